// The demo app's single bundle: real posthog-js from npm pointed at this
// server (same origin), the copilot widget, and the page's own UI logic.
import posthog from 'posthog-js';
import { mount } from './widget.js';
import { initApp } from './app.js';

const DEMO_USER = 'demo_user';
const DEMO_EMAIL = 'casey.jones@example.com';

posthog.init('phc_demo_copilot', {
  api_host: window.location.origin,
  autocapture: true,
  capture_pageview: true,
  capture_pageleave: true,
  disable_session_recording: true,
  // Nothing to lazy-load from the server: no surveys, no toolbar.
  disable_surveys: true,
  request_batching: false,
  persistence: 'localStorage',
  person_profiles: 'identified_only',
  bootstrap: { distinctID: DEMO_USER, isIdentifiedID: true },
});
posthog.identify(DEMO_USER, { email: DEMO_EMAIL });
posthog.register({ email: DEMO_EMAIL });

function start() {
  initApp();
  const widget = mount({ serverUrl: window.location.origin, productId: 'demo', userId: DEMO_USER, title: 'Acme Copilot' });
  window.__demo = { posthog, widget };
}

// Exposed at once so tests can reach posthog even before the DOM is ready.
window.__demo = { posthog };
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
