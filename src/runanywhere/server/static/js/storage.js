// Storage: the quota bar, models by last use (size, engine, state, pinned when in use), pull with a live
// progress bar after showing the eviction plan, delete with confirmation, clear all.
import { $, h, bytes } from './dom.js';
import { getJSON, models, request, stream } from './api.js';

let loaded = new Map();

function quota(report) {
  const total = report.quota_bytes ?? report.used_bytes + report.disk_free_bytes;
  const free = report.quota_bytes === null ? report.disk_free_bytes : Math.max(0, report.quota_bytes - report.used_bytes);
  const fill = total ? report.used_bytes / total : 0;
  const bar = $('quota-bar');
  bar.className = `quota-bar${fill > 0.9 ? ' full' : fill > 0.7 ? ' warn' : ''}`;
  bar.querySelector('span').style.width = `${Math.min(100, fill * 100).toFixed(1)}%`;
  bar.setAttribute('aria-valuenow', (fill * 100).toFixed(0));
  bar.dataset.used = report.used_bytes;
  $('quota-text').textContent = `${bytes(report.used_bytes)} used of ${report.quota_bytes === null ? `${bytes(total)} (no quota: disk)` : `${bytes(report.quota_bytes)} quota`} · ${bytes(free)} free · ${report.model_count} models`;
}

function progressOf(event) {
  if (typeof event.bytes_downloaded === 'number' && event.total_bytes) return event.bytes_downloaded / event.total_bytes;
  return typeof event.progress === 'number' ? event.progress : null;
}

async function pull(model, row) {
  $('storage-error').textContent = '';
  const plan = await getJSON(`/app/storage/plan?model=${encodeURIComponent(model.id)}`);
  if (!plan.fits) { $('storage-error').textContent = `${model.id} needs ${bytes(plan.needed_bytes)}: it cannot fit even after evicting every unpinned model.`; return; }
  if (plan.evicts.length) {
    $('storage-plan').textContent = `Pulling ${model.id} (${bytes(plan.needed_bytes)}) evicts ${plan.evicts.join(', ')} (${bytes(plan.freed_bytes)}).`;
    if (!window.confirm(`${$('storage-plan').textContent} Continue?`)) return;
  } else {
    $('storage-plan').textContent = `Pulling ${model.id} (${bytes(plan.needed_bytes)}): it fits without evicting anything.`;
  }
  const bar = h('progress', { max: 1, value: 0, 'aria-label': `Downloading ${model.id}` });
  const actions = row.querySelector('.actions');
  actions.replaceChildren(bar);
  try {
    for await (const event of stream(`/v1/models/${encodeURIComponent(model.id)}/pull`, {})) {
      const fraction = progressOf(event);
      if (fraction !== null) bar.value = fraction;
    }
    bar.value = 1;
    row.dataset.pulled = 'true';
  } catch (err) {
    $('storage-error').textContent = `${model.id}: ${err.message} (press Resume to continue from where it stopped)`;
    actions.replaceChildren(h('button', { type: 'button', onclick: () => pull(model, row) }, 'Resume'));
    return;
  }
  await refresh();
}

async function remove(model) {
  if (!window.confirm(`Delete ${model.id} (${bytes(model.size_bytes)}) from this computer?`)) return;
  try {
    await request(`/v1/models/${encodeURIComponent(model.id)}`, { method: 'DELETE' });
  } catch (err) {
    $('storage-error').textContent = `${model.id}: ${err.message}`;
  }
  await refresh();
}

async function clearAll(report) {
  const stored = report.models.filter((m) => m.last_used_at !== null && !m.pinned);
  if (!stored.length || !window.confirm(`Delete all ${stored.length} stored models not in use?`)) return;
  for (const model of stored) {
    try { await request(`/v1/models/${encodeURIComponent(model.id)}`, { method: 'DELETE' }); } catch (err) { $('storage-error').textContent = `${model.id}: ${err.message}`; }
  }
  await refresh();
}

function row(model) {
  const inUse = model.pinned || loaded.get(model.id) === 'loaded';
  const state = inUse ? h('span', { class: 'pin' }, 'pinned (in use)') : model.status;
  const tr = h('tr', { 'data-model': model.id, 'data-status': model.status },
    h('td', {}, model.id), h('td', {}, bytes(model.size_bytes)), h('td', {}, model.engine), h('td', { class: 'model-state' }, state), h('td', { class: 'actions' }));
  const stored = model.status === 'stored' || model.status === 'in-memory';
  const actions = tr.querySelector('.actions');
  if (stored) actions.append(h('button', { type: 'button', class: 'secondary', disabled: inUse || undefined, onclick: () => remove(model), 'aria-label': `Delete ${model.id}` }, 'Delete'));
  else actions.append(h('button', { type: 'button', onclick: () => pull(model, tr), 'aria-label': `Pull ${model.id}` }, 'Pull'));
  return tr;
}

let current = null;

export async function refresh() {
  try {
    const [report, list] = await Promise.all([getJSON('/app/storage'), models().catch(() => [])]);
    loaded = new Map(list.map((m) => [m.id, m.state]));
    current = report;
    quota(report);
    $('storage-table').querySelector('tbody').replaceChildren(...report.models.map(row));
  } catch (err) {
    $('storage-error').textContent = err.message;
  }
}

export function mount() {
  $('storage-refresh').addEventListener('click', refresh);
  $('storage-clear').addEventListener('click', () => current && clearAll(current));
}
