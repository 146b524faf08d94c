// The widget's stylesheet, injected once into <head> by widget.js.
//
// Every rule is scoped under #copilot-root so the host page's styles and ours do
// not leak into each other; the one exception is .copilot-dom-highlight, which
// widget.js puts on a page element a bot message points at (domHighlight).
// Colours come from custom properties that mount() sets from the config
// (`colors.primary`, `colors.background`, `colors.text`).
export const WIDGET_CSS = `
#copilot-root {
  --copilot-primary: #4f46e5;
  --copilot-on-primary: #ffffff;
  --copilot-accent: #4f46e5;
  --copilot-bg: #ffffff;
  --copilot-text: #1f2937;
  /* Derived colours; mount() recomputes them when the config sets colours. */
  --copilot-muted: #6b7280;
  --copilot-line: #e4e6ea;
  --copilot-bot-bubble: #f1f2f4;
  --copilot-code-bg: rgba(31, 41, 55, 0.1);
  --copilot-on-primary-faint: rgba(255, 255, 255, 0.18);
  --copilot-primary-ring: rgba(79, 70, 229, 0.22);
  position: fixed;
  right: 20px;
  bottom: 20px;
  z-index: 2147483000;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--copilot-text);
  -webkit-font-smoothing: antialiased;
}
#copilot-root *, #copilot-root *::before, #copilot-root *::after { box-sizing: border-box; }
#copilot-root [hidden] { display: none !important; }
/* :where() keeps this reset at id-only specificity so the rules below win. */
#copilot-root :where(button, textarea) {
  font: inherit;
  color: inherit;
  margin: 0;
  letter-spacing: normal;
  text-transform: none;
}
#copilot-root :where(button) { cursor: pointer; }
#copilot-root :focus-visible {
  outline: 2px solid var(--copilot-accent);
  outline-offset: 2px;
}
#copilot-root .copilot-sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}

/* Launcher */
#copilot-launcher {
  position: relative;
  width: 56px;
  height: 56px;
  border: 0;
  border-radius: 50%;
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
  display: flex;
  align-items: center;
  justify-content: center;
  box-shadow: 0 6px 20px rgba(0, 0, 0, 0.22);
  transition: transform 0.15s ease, box-shadow 0.15s ease;
}
#copilot-launcher:hover { transform: translateY(-1px); box-shadow: 0 8px 24px rgba(0, 0, 0, 0.26); }
#copilot-launcher svg { width: 26px; height: 26px; }
#copilot-launcher .copilot-badge {
  position: absolute;
  top: -3px;
  right: -3px;
  min-width: 20px;
  height: 20px;
  padding: 0 6px;
  border-radius: 10px;
  background: #dc2626;
  color: #fff;
  font-size: 12px;
  font-weight: 700;
  line-height: 20px;
  text-align: center;
  box-shadow: 0 0 0 2px var(--copilot-bg);
}

/* Panel */
#copilot-panel {
  position: absolute;
  right: 0;
  bottom: 72px;
  width: 370px;
  height: min(600px, calc(100vh - 112px));
  display: flex;
  flex-direction: column;
  background: var(--copilot-bg);
  color: var(--copilot-text);
  border: 1px solid var(--copilot-line);
  border-radius: 16px;
  box-shadow: 0 16px 48px rgba(0, 0, 0, 0.2);
  overflow: hidden;
  animation: copilot-pop 0.16s ease-out;
}
@keyframes copilot-pop {
  from { opacity: 0; transform: translateY(8px) scale(0.98); }
  to { opacity: 1; transform: none; }
}
#copilot-root .copilot-header {
  display: flex;
  align-items: center;
  gap: 10px;
  padding: 12px 10px 12px 16px;
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
  flex: none;
}
#copilot-root .copilot-avatar {
  width: 30px; height: 30px; flex: none; border-radius: 50%;
  background: var(--copilot-on-primary-faint);
  display: flex; align-items: center; justify-content: center;
}
#copilot-root .copilot-avatar svg { width: 18px; height: 18px; }
#copilot-root .copilot-title {
  flex: 1;
  margin: 0;
  font-size: 16px;
  font-weight: 650;
  line-height: 1.3;
  color: inherit;
  overflow: hidden;
  text-overflow: ellipsis;
  white-space: nowrap;
}
#copilot-root .copilot-close {
  width: 36px; height: 36px; border: 0; border-radius: 8px;
  background: transparent; color: inherit;
  display: flex; align-items: center; justify-content: center;
}
#copilot-root .copilot-close:hover { background: var(--copilot-on-primary-faint); }
#copilot-root .copilot-close svg { width: 20px; height: 20px; }
#copilot-root .copilot-status {
  flex: none;
  padding: 6px 16px;
  font-size: 13px;
  color: #92400e;
  background: #fef3c7;
  border-bottom: 1px solid #fde68a;
}

/* Messages */
#copilot-messages {
  flex: 1;
  overflow-y: auto;
  overscroll-behavior: contain;
  padding: 16px 14px 8px;
  display: flex;
  flex-direction: column;
  gap: 8px;
}
#copilot-root .copilot-empty {
  margin: auto 12px;
  text-align: center;
  color: var(--copilot-muted);
  font-size: 14px;
}
#copilot-root .copilot-msg {
  max-width: 85%;
  padding: 9px 13px;
  border-radius: 16px;
  overflow-wrap: anywhere;
}
#copilot-root .copilot-bot {
  align-self: flex-start;
  background: var(--copilot-bot-bubble);
  color: var(--copilot-text);
  border-bottom-left-radius: 5px;
}
#copilot-root .copilot-user {
  align-self: flex-end;
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
  border-bottom-right-radius: 5px;
  white-space: pre-wrap;
}
#copilot-root .copilot-msg p { margin: 0; }
#copilot-root .copilot-msg p + p,
#copilot-root .copilot-msg p + ol, #copilot-root .copilot-msg p + ul,
#copilot-root .copilot-msg ol + p, #copilot-root .copilot-msg ul + p { margin-top: 8px; }
#copilot-root .copilot-msg ol, #copilot-root .copilot-msg ul { margin: 0; padding-left: 22px; }
#copilot-root .copilot-msg li + li { margin-top: 2px; }
#copilot-root .copilot-msg strong { font-weight: 650; }
#copilot-root .copilot-msg code {
  font: 0.9em/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  padding: 1px 4px;
  border-radius: 4px;
  background: var(--copilot-code-bg);
}
#copilot-root .copilot-msg a { color: var(--copilot-accent); text-decoration: underline; }
#copilot-root .copilot-user a { color: inherit; }
/* A streamed answer still being written. */
#copilot-root .copilot-draft > :last-child::after {
  content: "";
  display: inline-block;
  width: 0.5em;
  height: 1em;
  margin-left: 2px;
  vertical-align: -0.15em;
  border-radius: 1px;
  background: var(--copilot-muted);
  animation: copilot-caret 1s steps(1) infinite;
}
@keyframes copilot-caret { 50% { opacity: 0; } }
#copilot-root .copilot-image { padding: 4px; }
#copilot-root .copilot-image img { display: block; max-width: 100%; max-height: 240px; border-radius: 12px; }

/* Reply chips */
#copilot-root .copilot-replies {
  display: flex;
  flex-wrap: wrap;
  gap: 6px;
  align-self: flex-start;
  max-width: 95%;
}
#copilot-root .copilot-quick-reply {
  display: inline-block;
  padding: 6px 12px;
  border: 1px solid var(--copilot-accent);
  border-radius: 999px;
  background: var(--copilot-bg);
  color: var(--copilot-accent);
  font-size: 14px;
  line-height: 1.3;
  text-decoration: none;
  text-align: left;
  transition: background 0.12s ease, color 0.12s ease;
}
#copilot-root .copilot-quick-reply:hover {
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
}

/* Thumbs up/down under an answer */
#copilot-root .copilot-feedback {
  display: flex;
  gap: 4px;
  align-self: flex-start;
  margin: -4px 0 2px 4px;
}
#copilot-root .copilot-thumb {
  display: inline-flex;
  align-items: center;
  justify-content: center;
  width: 30px;
  height: 26px;
  padding: 0;
  border: 1px solid transparent;
  border-radius: 8px;
  background: transparent;
  color: var(--copilot-muted);
  line-height: 1;
  transition: color 0.12s ease, background 0.12s ease;
}
#copilot-root .copilot-thumb svg { width: 16px; height: 16px; }
#copilot-root .copilot-thumb:hover,
#copilot-root .copilot-thumb:focus-visible { color: var(--copilot-text); background: var(--copilot-bot-bubble); }
#copilot-root .copilot-thumb:focus-visible { outline: 2px solid var(--copilot-accent); outline-offset: 1px; }
#copilot-root .copilot-thumb[aria-pressed="true"] {
  color: var(--copilot-accent);
  border-color: var(--copilot-accent);
  background: var(--copilot-primary-ring);
}
#copilot-root .copilot-thumb[aria-pressed="true"] svg { fill: var(--copilot-primary-ring); }
#copilot-root .copilot-feedback-given .copilot-thumb[aria-pressed="false"] { opacity: 0.5; }

/* Typing indicator */
#copilot-root .copilot-typing {
  flex: none;
  align-self: flex-start;
  display: inline-flex;
  gap: 4px;
  margin: 0 14px 8px;
  padding: 11px 13px;
  width: max-content;
  border-radius: 16px;
  border-bottom-left-radius: 5px;
  background: var(--copilot-bot-bubble);
}
#copilot-root .copilot-typing span {
  width: 7px; height: 7px; border-radius: 50%;
  background: var(--copilot-muted);
  animation: copilot-bounce 1.2s infinite ease-in-out;
}
#copilot-root .copilot-typing span:nth-child(2) { animation-delay: 0.15s; }
#copilot-root .copilot-typing span:nth-child(3) { animation-delay: 0.3s; }
@keyframes copilot-bounce {
  0%, 60%, 100% { transform: translateY(0); opacity: 0.5; }
  30% { transform: translateY(-4px); opacity: 1; }
}

/* "Show me": the tooltip next to a highlighted page element (fixed, placed by widget.js). */
#copilot-root .copilot-tooltip {
  position: fixed;
  top: 0;
  left: 0;
  max-width: min(280px, calc(100vw - 16px));
  padding: 10px 36px 10px 12px;
  border-radius: 10px;
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
  font-size: 14px;
  line-height: 1.4;
  box-shadow: 0 8px 24px rgba(0, 0, 0, 0.22);
  animation: copilot-pop 0.16s ease-out;
}
#copilot-root .copilot-tooltip p { margin: 0; }
#copilot-root .copilot-tooltip p + p { margin-top: 6px; }
#copilot-root .copilot-tooltip ol, #copilot-root .copilot-tooltip ul { margin: 4px 0 0; padding-left: 20px; }
#copilot-root .copilot-tooltip a { color: inherit; text-decoration: underline; }
#copilot-root .copilot-tooltip-close {
  position: absolute;
  top: 5px;
  right: 5px;
  width: 26px;
  height: 26px;
  border: 0;
  border-radius: 6px;
  background: transparent;
  color: inherit;
  display: flex;
  align-items: center;
  justify-content: center;
}
#copilot-root .copilot-tooltip-close:hover { background: var(--copilot-on-primary-faint); }
#copilot-root .copilot-tooltip-close svg { width: 14px; height: 14px; }
#copilot-root .copilot-tooltip-arrow {
  position: absolute;
  width: 10px;
  height: 10px;
  background: var(--copilot-primary);
  transform: rotate(45deg);
}
#copilot-root .copilot-tooltip[data-side="bottom"] .copilot-tooltip-arrow { top: -5px; }
#copilot-root .copilot-tooltip[data-side="top"] .copilot-tooltip-arrow { bottom: -5px; }
#copilot-root .copilot-tooltip[data-side="left"] .copilot-tooltip-arrow { right: -5px; }
#copilot-root .copilot-tooltip[data-side="right"] .copilot-tooltip-arrow { left: -5px; }

/* The highlighted page element itself. widget.js copies the widget's colours
   onto it (it is outside #copilot-root); !important because the page's own
   focus and hover styles must not hide it for the few seconds it is shown. */
.copilot-dom-highlight {
  outline: 3px solid var(--copilot-highlight, #4f46e5) !important;
  outline-offset: 3px !important;
  animation: copilot-highlight-pulse 1.6s ease-out infinite;
}
@keyframes copilot-highlight-pulse {
  from { box-shadow: 0 0 0 3px var(--copilot-highlight-ring, rgba(79, 70, 229, 0.22)); }
  to { box-shadow: 0 0 0 14px transparent; }
}

/* Composer */
#copilot-root .copilot-composer {
  flex: none;
  display: flex;
  align-items: flex-end;
  gap: 8px;
  margin: 0;
  padding: 10px 10px 10px 14px;
  border-top: 1px solid var(--copilot-line);
  background: var(--copilot-bg);
}
#copilot-input {
  flex: 1;
  min-height: 40px;
  max-height: 120px;
  padding: 9px 12px;
  border: 1px solid var(--copilot-line);
  border-radius: 12px;
  background: var(--copilot-bg);
  color: var(--copilot-text);
  resize: none;
  line-height: 1.4;
  font-size: 15px;
}
#copilot-input::placeholder { color: var(--copilot-muted); }
#copilot-input:focus { outline: none; border-color: var(--copilot-primary); box-shadow: 0 0 0 3px var(--copilot-primary-ring); }
#copilot-send {
  flex: none;
  width: 40px;
  height: 40px;
  border: 0;
  border-radius: 12px;
  background: var(--copilot-primary);
  color: var(--copilot-on-primary);
  display: flex;
  align-items: center;
  justify-content: center;
}
#copilot-send svg { width: 20px; height: 20px; }
#copilot-send:disabled { opacity: 0.45; cursor: not-allowed; }

/* Phones: the panel takes the whole screen. */
@media (max-width: 480px) {
  #copilot-root { right: 16px; bottom: 16px; }
  #copilot-panel {
    position: fixed;
    inset: 0;
    width: 100%;
    height: 100%;
    height: 100dvh;
    border: 0;
    border-radius: 0;
    box-shadow: none;
  }
  #copilot-root.copilot-open #copilot-launcher { display: none; }
  #copilot-input { font-size: 16px; } /* stops iOS zooming in on focus */
}

@media (prefers-reduced-motion: reduce) {
  #copilot-panel, #copilot-launcher, #copilot-root .copilot-typing span,
  #copilot-root .copilot-tooltip, #copilot-root .copilot-draft > :last-child::after,
  .copilot-dom-highlight { animation: none; transition: none; }
}
`;
