// Settings persisted in localStorage and applied to Chat and Voice requests; the About facts from the server.
import { $, h, fixed, bytes } from './dom.js';
import { getJSON, models } from './api.js';
import { setLogLevel } from './log.js';

const KEY = 'runanywhere.settings';
const DEFAULTS = { temperature: 0.7, top_p: 0.95, max_tokens: 512, system: '', voice: '', log_level: 'info' };

export function settings() {
  try { return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) ?? '{}') }; } catch { return { ...DEFAULTS }; }
}

// The sampling fields of a chat request, as the user set them.
export function generation() {
  const s = settings();
  return { temperature: Number(s.temperature), top_p: Number(s.top_p), max_tokens: Number(s.max_tokens) };
}

export function withSystem(messages) {
  const system = settings().system.trim();
  return system ? [{ role: 'system', content: system }, ...messages] : messages;
}

const fields = { temperature: 'set-temperature', top_p: 'set-top-p', max_tokens: 'set-max-tokens', system: 'set-system',
  voice: 'set-voice', log_level: 'set-log-level' };

export async function voices() {
  return (await models('speech')).map((m) => m.id);
}

export function mount() {
  const current = settings();
  setLogLevel(current.log_level);
  for (const [name, id] of Object.entries(fields)) $(id).value = current[name];
  voices().then((list) => {
    const select = $('set-voice');
    select.replaceChildren(h('option', { value: '' }, 'server default'), ...list.map((v) => h('option', { value: v }, v)));
    select.value = settings().voice;
  }).catch(() => {});
  $('settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const next = {};
    for (const [name, id] of Object.entries(fields)) next[name] = $(id).value;
    localStorage.setItem(KEY, JSON.stringify(next));
    setLogLevel(next.log_level);
    $('settings-saved').textContent = 'Saved: the next Chat and Voice requests use these.';
  });
}

export async function showAbout() {
  const dl = $('about');
  try {
    const about = await getJSON('/app/about');
    const d = about.doctor;
    const rows = [
      ['SDK version', about.version], ['CPU', `${d.cpu_model} (${d.physical_cores} cores, ${d.logical_cores} threads)`],
      ['SIMD', (d.simd ?? []).join(' ') || 'none detected'], ['RAM', `${bytes(d.ram_total_bytes)} total, ${bytes(d.ram_available_bytes)} available`],
      ['Memory bandwidth', d.memory_bandwidth_gb_per_s ? `${fixed(d.memory_bandwidth_gb_per_s, 1)} GB/s (measured)` : 'not measured'],
      ['Decode ceiling', about.decode_ceiling_100mb_tokens_per_second ? `${fixed(about.decode_ceiling_100mb_tokens_per_second)} tokens/s for a 100 MB model` : '–'],
      ['OS', `${d.os_name} ${d.os_version}`], ['Python', d.python_version],
    ];
    dl.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  } catch (err) {
    dl.replaceChildren(h('dt', {}, 'Unavailable'), h('dd', {}, err.message));
  }
}
