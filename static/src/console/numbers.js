// #/numbers: daily counters from /admin/api/stats as Chart.js charts, plus the
// window's headline rates. Only the chart parts used here are registered, so
// the bundle carries no more of Chart.js than it needs.
import {
  Chart,
  BarController,
  BarElement,
  LineController,
  LineElement,
  PointElement,
  CategoryScale,
  LinearScale,
  Legend,
  Tooltip,
} from 'chart.js';
import { h, replace, errorBox, icon, percent } from './dom.js';
import { get } from './api.js';

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale, Legend, Tooltip);

const COLORS = {
  indigo: '#4f46e5',
  sky: '#0ea5e9',
  red: '#dc2626',
  amber: '#d97706',
  green: '#16a34a',
  slate: '#94a3b8',
  violet: '#7c3aed',
};
const WINDOWS = [7, 14, 30, 90];

// For tests (and the curious): the live chart instances by canvas id.
const charts = {};
window.__consoleCharts = charts;

function destroyCharts() {
  for (const [id, chart] of Object.entries(charts)) {
    chart.destroy();
    delete charts[id];
  }
}

export function renderNumbers(view, { product, params, navigate }) {
  let alive = true;
  const days = WINDOWS.includes(Number(params.get('days'))) ? Number(params.get('days')) : 14;
  const picker = h(
    'select',
    { id: 'numbers-days', 'aria-label': 'Window' },
    WINDOWS.map((d) => h('option', { value: d, selected: d === days }, `Last ${d} days`)),
  );
  picker.addEventListener('change', () => navigate(`#/numbers?days=${picker.value}`));
  const totals = h('div', { id: 'numbers-totals', className: 'totals' });
  const grid = h('div', { className: 'chart-grid' });
  const status = h('div', { id: 'numbers-status', 'aria-live': 'polite' }, h('p', { className: 'subtle loading' }, 'Loading…'));
  replace(
    view,
    h(
      'div',
      { className: 'page-head' },
      h('div', null, h('h1', null, 'Numbers'), h('p', { className: 'subtle' }, 'How the copilot is doing, per day.')),
      picker,
    ),
    status,
    totals,
    grid,
  );

  get('/admin/api/stats', { product, days })
    .then((stats) => {
      if (!alive) return;
      replace(status);
      drawTotals(totals, stats);
      drawCharts(grid, stats);
    })
    .catch((err) => {
      if (alive) replace(status, errorBox(`Could not load the numbers: ${err.message}`));
    });

  return () => {
    alive = false;
    destroyCharts();
  };
}

function tile(id, label, value, hint) {
  return h(
    'div',
    { className: 'tile card', id },
    h('span', { className: 'tile-label' }, label),
    h('span', { className: 'tile-value' }, value),
    hint ? h('span', { className: 'tile-hint' }, hint) : null,
  );
}

function drawTotals(node, stats) {
  const t = stats.totals || {};
  const n = (v) => (typeof v === 'number' ? v.toLocaleString() : '—');
  replace(
    node,
    tile('total-conversations', 'Conversations', n(t.conversations), `${n(t.messages)} messages`),
    tile('total-fallback-rate', 'Fallback rate', percent(t.fallback_rate, 1), `${n(t.fallbacks)} fallbacks`),
    tile('total-llm-share', 'LLM share', percent(t.llm_share, 1), `${n(t.llm)} LLM answers`),
    tile(
      'total-resolution-rate',
      'Resolution rate',
      percent(t.resolution_rate, 1),
      typeof t.resolution_rate === 'number'
        ? `no new question within ${n(stats.resolved_after_minutes)} min`
        : `none settled yet: a conversation counts ${n(stats.resolved_after_minutes)} min after its last message`,
    ),
    tile(
      'total-thumbs',
      'Thumbs up / down',
      h('span', { className: 'thumbs-value' }, icon('up'), n(t.thumbs_up), h('span', { className: 'sep' }, '/'), icon('down'), n(t.thumbs_down)),
      'given in the widget',
    ),
  );
}

// A day without messages has no rate: a gap in the line, not 0 %.
const pct = (num, den) => (den > 0 ? Math.round((num / den) * 1000) / 10 : null);

function drawCharts(grid, stats) {
  destroyCharts();
  const days = Array.isArray(stats.days) ? stats.days : [];
  const labels = days.map((d) => shortDate(d.date));
  const col = (key) => days.map((d) => (typeof d[key] === 'number' ? d[key] : 0));
  const specs = [
    {
      id: 'chart-volume',
      title: 'Conversations and messages',
      type: 'bar',
      datasets: [
        { label: 'Conversations', data: col('conversations'), color: COLORS.indigo },
        { label: 'Messages', data: col('messages'), color: COLORS.sky },
      ],
    },
    {
      id: 'chart-rates',
      title: 'Fallback rate and LLM share',
      type: 'line',
      percent: true,
      datasets: [
        { label: 'Fallback rate', data: days.map((d) => pct(d.fallbacks, d.messages)), color: COLORS.red },
        { label: 'LLM share', data: days.map((d) => pct(d.llm, d.messages)), color: COLORS.violet },
      ],
    },
    {
      id: 'chart-latency',
      title: 'LLM latency, average',
      type: 'line',
      unit: 'ms',
      datasets: [
        {
          label: 'Average ms',
          data: days.map((d) => (typeof d.llm_ms_avg === 'number' ? Math.round(d.llm_ms_avg) : null)),
          color: COLORS.amber,
          spanGaps: true,
        },
      ],
    },
    {
      id: 'chart-offers',
      title: 'Proactive offers shown, by answer',
      type: 'bar',
      stacked: true,
      datasets: [
        { label: 'Accepted', data: col('offers_accepted'), color: COLORS.green },
        { label: 'Declined', data: col('offers_declined'), color: COLORS.red },
        {
          label: 'No answer',
          data: days.map((d) => Math.max(0, (d.offers_shown || 0) - (d.offers_accepted || 0) - (d.offers_declined || 0))),
          color: COLORS.slate,
        },
      ],
    },
    {
      id: 'chart-resolved',
      title: 'Resolved conversations',
      type: 'bar',
      datasets: [{ label: 'Resolved', data: col('resolved'), color: COLORS.green }],
    },
    {
      id: 'chart-thumbs',
      title: 'Thumbs up and down',
      type: 'bar',
      stacked: true,
      datasets: [
        { label: 'Thumbs up', data: col('thumbs_up'), color: COLORS.green },
        { label: 'Thumbs down', data: col('thumbs_down'), color: COLORS.red },
      ],
    },
  ];
  const items = specs.map((spec) => {
    const canvas = h('canvas', { id: spec.id, role: 'img', 'aria-label': `${spec.title}, per day` });
    const empty = spec.datasets.every((d) => d.data.every((v) => !v));
    const figure = h(
      'figure',
      { className: 'card chart-card', 'data-chart': spec.id, 'data-empty': empty ? 'true' : null },
      h('figcaption', null, spec.title),
      h('div', { className: 'chart-box' }, canvas, empty ? h('p', { className: 'chart-empty' }, 'Nothing in this window yet') : null),
    );
    return { spec, canvas, figure };
  });
  replace(grid, items.map((item) => item.figure));
  // In the document first: Chart.js sizes a canvas from its container.
  for (const { spec, canvas } of items) charts[spec.id] = makeChart(canvas, spec, labels);
}

function makeChart(canvas, spec, labels) {
  const line = spec.type === 'line';
  return new Chart(canvas, {
    type: spec.type,
    data: {
      labels,
      datasets: spec.datasets.map((d) => ({
        label: d.label,
        data: d.data,
        backgroundColor: line ? `${d.color}22` : d.color,
        borderColor: d.color,
        borderWidth: line ? 2 : 0,
        borderRadius: line ? 0 : 3,
        pointRadius: line ? 2.5 : 0,
        cubicInterpolationMode: 'monotone',
        spanGaps: Boolean(d.spanGaps),
        maxBarThickness: 28,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      // Drawn at once: screenshots and tests see the final chart.
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { display: spec.datasets.length > 1, position: 'bottom', labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const v = ctx.parsed.y;
              if (v === null || v === undefined) return `${ctx.dataset.label}: —`;
              return `${ctx.dataset.label}: ${v}${spec.percent ? '%' : spec.unit ? ` ${spec.unit}` : ''}`;
            },
          },
        },
      },
      scales: {
        x: { stacked: Boolean(spec.stacked), grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        y: {
          stacked: Boolean(spec.stacked),
          beginAtZero: true,
          suggestedMax: spec.percent ? 100 : spec.unit ? 100 : 4,
          max: spec.percent ? 100 : undefined,
          ticks: {
            precision: spec.percent ? undefined : 0,
            callback: (v) => (spec.percent ? `${v}%` : spec.unit ? `${v} ${spec.unit}` : v),
          },
          grid: { color: '#eef0f4' },
        },
      },
    },
  });
}

function shortDate(iso) {
  const [y, m, d] = String(iso || '').split('-').map(Number);
  if (!y || !m || !d) return String(iso || '');
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}
