// Chat: streamed Markdown replies, Stop, per-message metrics, history, model picker, <think> sections and the
// demo tools (the model asks, /app/tools/{name} answers, a card shows both, the model finishes the reply).
import { $, h, fixed } from './dom.js';
import { ApiError, getJSON, models, postJSON, request, stream } from './api.js';
import { renderMarkdown, splitThinking } from './markdown.js';
import { generation, withSystem } from './settings.js';
import { log } from './log.js';

const MAX_TOOL_ROUNDS = 4;
let history = [];
let controller = null;
let toolSpecs = null;

function bubble(role) {
  const el = h('div', { class: `msg ${role}` });
  $('chat-log').append(el);
  return el;
}

function scroll() { const logEl = $('chat-log'); logEl.scrollTop = logEl.scrollHeight; }

// The answer as Markdown under a collapsible "thinking" section: the server's `reasoning_content`, or a
// `<think>` block left in the text.
function renderReply(el, text, reasoning = '', reasoningOpen = false) {
  const split = splitThinking(text);
  const { answer } = split;
  const thinking = reasoning || split.thinking;
  const open = reasoning ? reasoningOpen : split.open;
  const body = h('div', { class: 'body' });
  body.innerHTML = renderMarkdown(answer);
  const parts = [];
  if (thinking !== null) {
    const details = h('details', { class: 'thinking', open: open || undefined }, h('summary', {}, open ? 'Thinking…' : 'Thinking'));
    details.append(h('div', {}, thinking.trim()));
    parts.push(details);
  }
  el.querySelector('.reply').replaceChildren(...parts, body);
}

// One model call, streamed into `el`; returns the text, the tool calls it asked for, and its metrics.
// "Always call a tool first" forces a call in the first round (by grammar, on the server), then lets the
// model answer from the results.
// `answer` (a user message quoting the tool results) asks for the answer only, without tools.
async function streamOnce(el, model, signal, round, answer) {
  const messages = answer ? [...history.filter((m) => !answer.quoted.has(m)), answer.message] : history;
  const body = { model, messages: withSystem(messages), stream: true, stream_options: { include_usage: true }, ...generation() };
  const choice = $('chat-tool-choice').value;
  if (!answer && $('chat-tools').checked && (round === 0 || choice === 'auto')) {
    body.tools = await tools();
    body.tool_choice = choice;
  }
  const started = performance.now();
  let text = '';
  let reasoning = '';
  let firstAt = null;
  let usage = null;
  let timings = null;
  const calls = [];
  for await (const chunk of stream('/v1/chat/completions', body, signal)) {
    if (chunk.usage) usage = chunk.usage;
    if (chunk.timings) timings = chunk.timings;
    const delta = chunk.choices?.[0]?.delta ?? {};
    for (const call of delta.tool_calls ?? []) {
      const slot = (calls[call.index ?? calls.length] ??= { id: call.id, name: '', arguments: '' });
      if (call.id) slot.id = call.id;
      if (call.function?.name) slot.name += call.function.name;
      if (call.function?.arguments) slot.arguments += call.function.arguments;
    }
    if (delta.reasoning_content) reasoning += delta.reasoning_content;
    if (delta.content || delta.reasoning_content) {
      firstAt ??= performance.now();
      text += delta.content ?? '';
      renderReply(el, text, reasoning, !text);
      scroll();
    }
  }
  return { text, calls: calls.filter(Boolean), usage, timings, client: { ttft: firstAt ? firstAt - started : null } };
}

// The server's own timings of the generation; the browser's clock only when the server sent none.
function metricsLine({ usage, timings, client }) {
  const t = timings ?? { time_to_first_token_ms: client.ttft };
  const cached = t.cached_prompt_tokens ?? usage?.prompt_tokens_details?.cached_tokens;
  const parts = [`first token ${fixed(t.time_to_first_token_ms)} ms${timings ? '' : ' (browser clock)'}`,
    `${fixed(t.decode_tokens_per_second, 1)} tokens/s`, `${usage?.completion_tokens ?? '–'} tokens`, `${cached ?? '–'} cached prompt tokens`];
  if (t.queue_ms > 50) parts.push(`waited ${fixed(t.queue_ms)} ms in the queue`);
  return parts.join(' · ');
}

async function runTool(el, call) {
  let args = {};
  let result;
  try {
    args = call.arguments ? JSON.parse(call.arguments) : {};
    result = (await postJSON(`/app/tools/${encodeURIComponent(call.name)}`, args)).result;
  } catch (err) {
    result = { error: err.message };
  }
  el.querySelector('.tools').append(h('div', { class: 'tool-card', 'data-tool': call.name },
    h('strong', {}, `tool: ${call.name}`), h('pre', { class: 'args' }, JSON.stringify(args)), h('pre', { class: 'result' }, `→ ${JSON.stringify(result)}`)));
  return result;
}

async function send(text) {
  const model = $('chat-model').value;
  history.push({ role: 'user', content: text });
  bubble('user').textContent = text;
  const el = bubble('assistant');
  el.append(h('div', { class: 'tools' }), h('div', { class: 'reply' }), h('p', { class: 'metrics' }));
  controller = new AbortController();
  busy(true);
  $('chat-error').textContent = '';
  let outcome = null;
  try {
    const made = new Set();
    const results = { quoted: new Set(), lines: [] };
    let answer = null;
    for (let round = 0; round < MAX_TOOL_ROUNDS; round += 1) {
      outcome = await streamOnce(el, model, controller.signal, round, answer);
      if (!outcome.calls.length) break;
      if (outcome.calls.every((c) => made.has(`${c.name} ${c.arguments}`))) {
        // A small model (Qwen2.5-Coder-0.5B) given the results as tool messages asks again for them: quote them
        // and repeat the question, as the SDK's tool loop does, and ask for the answer without tools.
        const content = `${results.lines.join('\n')}\nUse this to answer my question: ${text}`;
        answer = { quoted: results.quoted, message: { role: 'user', content } };
        continue;
      }
      outcome.calls.forEach((c) => made.add(`${c.name} ${c.arguments}`));
      history.push({ role: 'assistant', content: outcome.text || null, tool_calls: outcome.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) });
      for (const call of outcome.calls) {
        const result = await runTool(el, call);
        const message = { role: 'tool', tool_call_id: call.id, content: JSON.stringify(result) };
        history.push(message);
        results.quoted.add(message);
        results.lines.push(`The tool ${call.name} returned: ${message.content}`);
      }
    }
    history.push({ role: 'assistant', content: outcome.text });
    el.querySelector('.metrics').textContent = metricsLine(outcome);
  } catch (err) {
    if (err.name === 'AbortError') {
      const partial = el.querySelector('.reply').textContent;
      history.push({ role: 'assistant', content: partial });
      el.querySelector('.metrics').textContent = 'stopped';
      el.dataset.stopped = 'true';
    } else {
      $('chat-error').textContent = err.message;
      log.error(err);
    }
  } finally {
    controller = null;
    busy(false);
    el.dataset.done = 'true';
  }
}

function busy(on) {
  $('chat-send').disabled = on;
  $('chat-stop').disabled = !on;
}

async function tools() {
  toolSpecs ??= (await getJSON('/app/tools')).tools;
  return toolSpecs;
}

async function pickModel() {
  const id = $('chat-model').value;
  const state = $('chat-model-state');
  state.replaceChildren(`Loading ${id}… `, h('progress', { 'aria-label': `Loading ${id}` }));
  $('chat-send').disabled = true;
  try {
    await request(`/v1/models/${encodeURIComponent(id)}/load`, { method: 'POST' });
    state.textContent = `${id} is loaded.`;
  } catch (err) {
    state.textContent = '';
    $('chat-error').textContent = err instanceof ApiError ? `Could not load ${id}: ${err.message}` : String(err);
  } finally {
    $('chat-send').disabled = false;
  }
}

export async function refreshModels() {
  const select = $('chat-model');
  const list = await models('chat');
  const previous = select.value;
  select.replaceChildren(...list.map((m) => h('option', { value: m.id }, `${m.id}${m.state && m.state !== 'loaded' ? ` (${m.state})` : ''}`)));
  if (list.some((m) => m.id === previous)) select.value = previous;
  if (!list.length) $('chat-model-state').textContent = 'No chat model is installed: pull one in the Storage tab.';
}

export function mount() {
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = '';
    send(text);
  });
  $('chat-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); $('chat-form').requestSubmit(); }
  });
  $('chat-stop').addEventListener('click', () => controller?.abort());
  $('chat-clear').addEventListener('click', () => { controller?.abort(); history = []; $('chat-log').replaceChildren(); });
  $('chat-model').addEventListener('change', pickModel);
  refreshModels().catch((err) => { $('chat-error').textContent = err.message; });
}
