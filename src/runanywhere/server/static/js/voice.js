// Voice: the live agent over /v1/realtime (OpenAI Realtime protocol, GA event names). The microphone goes
// up as PCM16 at 24 kHz; the reply plays as it streams; talking over it stops playback at once and trims
// the reply to what was heard (conversation.item.truncate); each turn's latency is charted.
import { $, h, fixed } from './dom.js';
import { PcmPlayer, base64ToBytes, bytesToBase64, fromPcm16, openMic, resample, toPcm16 } from './audio.js';
import { generation, settings } from './settings.js';
import { log } from './log.js';

const RATE = 24000;
const HOLD_S = 10; // microphone audio held back until the socket is open and the session configured
let socket = null;
let configured = false; // session.update sent: from now on the microphone streams straight to the server
let held = []; // PCM16 blocks captured before that, sent once it is
let mic = null;
let player = null;
let reply = null; // { item, line, text, heardMs, done, cut }
let stats = { chunks: 0, heardMs: 0, interruptions: 0 };
const lines = new Map(); // assistant item id -> its transcript line

function setState(state, label = state) {
  const el = $('voice-state');
  el.dataset.state = state;
  el.textContent = label;
}

function line(role, text = '') {
  const el = h('p', { class: `msg ${role}` }, h('strong', {}, role === 'user' ? 'You: ' : 'Agent: '), h('span', { class: 'text' }, text));
  $('voice-transcript').append(el);
  $('voice-transcript').scrollTop = $('voice-transcript').scrollHeight;
  return el;
}

function showStats() {
  const panel = $('panel-voice');
  panel.dataset.audioChunks = stats.chunks;
  panel.dataset.heardMs = Math.round(stats.heardMs);
  panel.dataset.interruptions = stats.interruptions;
  $('voice-stats').textContent = `reply audio: ${stats.chunks} chunks received, ${fixed(stats.heardMs / 1000, 1)} s played · ${stats.interruptions} interrupted`;
}

function chart(latency) {
  const total = latency.speech_end_to_first_audio_ms;
  if (total === null || total === undefined) return;
  const stages = [['vad', latency.vad_end_of_speech_delay_ms], ['stt', latency.stt_ms],
    ['llm', latency.llm_time_to_first_token_ms], ['tts', latency.tts_time_to_first_audio_ms]];
  const scale = 7 / Math.max(2000, total); // rem per ms: 2 s fills the chart
  const bar = h('div', { class: 'bar', title: stages.map(([k, v]) => `${k} ${fixed(v)} ms`).join(', ') },
    ...stages.map(([k, v]) => h('span', { class: k, style: `height:${Math.max(0, (v ?? 0) * scale)}rem` })),
    h('b', {}, `${fixed(total)} ms`));
  $('voice-chart').append(bar);
}

function send(event) { if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event)); }

// The user talked over the reply (or the server says it cut the reply for that): playback stops at once,
// and the server is told how much of the reply was heard. A reply still being generated counts even when
// its audio so far has all been played (the next chunk is late), so a slow reply is interrupted too.
function bargeIn() {
  if (!reply || reply.cut || (reply.done && !player?.playing)) return;
  reply.cut = true;
  reply.heardMs += player?.heardMs() ?? 0;
  stats.heardMs += player?.heardMs() ?? 0;
  player?.stop();
  stats.interruptions += 1;
  reply.line.dataset.interrupted = 'true';
  if (reply.item) send({ type: 'conversation.item.truncate', item_id: reply.item, content_index: 0, audio_end_ms: Math.floor(reply.heardMs) });
  showStats();
}

function onEvent(event) {
  log.debug('realtime', event.type);
  switch (event.type) {
    case 'session.created': setState('listening'); break;
    case 'input_audio_buffer.speech_started': bargeIn(); setState('hearing', 'hearing you'); break;
    case 'input_audio_buffer.speech_stopped': setState('thinking'); break;
    case 'conversation.item.input_audio_transcription.completed': line('user', event.transcript); break;
    case 'response.created': player.reset(); reply = { item: null, line: line('assistant'), text: '', heardMs: 0, done: false, cut: false }; break;
    case 'response.output_audio.delta':
      if (!reply) break;
      reply.item = event.item_id;
      lines.set(event.item_id, reply.line);
      player.push(fromPcm16(base64ToBytes(event.delta)));
      stats.chunks += 1;
      setState('speaking');
      showStats();
      break;
    case 'response.output_audio_transcript.delta':
    case 'response.output_text.delta':
      if (reply) { reply.text += event.delta; reply.line.querySelector('.text').textContent = reply.text; }
      break;
    case 'response.done':
      if (event.response?.status_details?.reason === 'turn_detected') bargeIn();
      if (event.response?.latency) chart(event.response.latency);
      if (reply) reply.done = true;
      if (reply && event.response?.status !== 'completed') reply.line.dataset.status = event.response?.status ?? 'cancelled';
      if (!player.playing) setState('listening');
      break;
    case 'conversation.item.truncated': {
      const truncated = lines.get(event.item_id);
      if (truncated) { truncated.dataset.heardMs = event.audio_end_ms; truncated.title = `heard ${event.audio_end_ms} ms before you spoke`; }
      break;
    }
    case 'error': $('voice-error').textContent = event.error?.message ?? 'error'; break;
    default: break;
  }
}

// Sent as soon as the socket opens, before any audio: the server applies events in order, so every word is
// heard and answered with the user's settings, however long the server takes to load its models.
function configure() {
  const s = settings();
  const g = generation(); // temperature and top_p: this server's documented session extension
  const session = { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', interrupt_response: true } } } };
  if (s.system.trim()) session.instructions = s.system.trim();
  if (g.max_tokens > 0) session.max_output_tokens = Math.min(g.max_tokens, 4096); // the realtime cap
  if (Number.isFinite(g.temperature)) session.temperature = g.temperature;
  if (Number.isFinite(g.top_p) && g.top_p > 0) session.top_p = g.top_p;
  if (s.voice) session.audio.output = { voice: s.voice };
  send({ type: 'session.update', session });
  configured = true;
  held.forEach((pcm) => append(pcm));
  held = [];
}

function append(pcm) { send({ type: 'input_audio_buffer.append', audio: bytesToBase64(new Uint8Array(pcm.buffer)) }); }

// The microphone, streamed to the server once the session is configured (held back until then); muting
// releases the device (the browser's recording light goes off).
async function listen() {
  try {
    mic = await openMic((samples, _level, rate) => {
      const pcm = toPcm16(resample(samples, rate, RATE));
      if (configured) { append(pcm); return; }
      held.push(pcm);
      while (held.length > 1 && held.reduce((n, block) => n + block.length, 0) > HOLD_S * RATE) held.shift();
    });
    return true;
  } catch (err) {
    $('voice-error').textContent = err.message;
    return false;
  }
}

async function toggleMute() {
  const button = $('voice-mute');
  const muting = button.getAttribute('aria-pressed') !== 'true';
  if (muting) { mic?.close(); mic = null; } else if (!(await listen())) return;
  button.setAttribute('aria-pressed', String(muting));
  button.textContent = muting ? 'Unmute microphone' : 'Mute microphone';
}

async function start() {
  $('voice-error').textContent = '';
  $('voice-start').disabled = true;
  player = new PcmPlayer(RATE);
  player.onidle = () => {
    stats.heardMs += player.heardMs();
    if (reply) reply.heardMs += player.heardMs();
    player.reset();
    showStats();
    if (socket) setState('listening');
  };
  if (!(await listen())) { $('voice-start').disabled = false; return; }
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/realtime?model=runanywhere-voice`;
  socket = new WebSocket(url);
  setState('connecting', 'connecting…');
  socket.onopen = configure;
  socket.onmessage = (message) => onEvent(JSON.parse(message.data));
  socket.onerror = () => { $('voice-error').textContent = 'The voice connection failed: is the server running?'; };
  socket.onclose = () => { if (socket) stop(); };
  $('voice-stop').disabled = false;
  $('voice-mute').disabled = false;
}

function stop() {
  const open = socket;
  socket = null;
  configured = false;
  held = [];
  open?.close();
  mic?.close();
  mic = null;
  player?.close();
  player = null;
  setState('idle');
  $('voice-start').disabled = false;
  $('voice-stop').disabled = true;
  Object.assign($('voice-mute'), { disabled: true, textContent: 'Mute microphone' });
  $('voice-mute').setAttribute('aria-pressed', 'false');
}

export function mount() {
  $('voice-start').addEventListener('click', start);
  $('voice-stop').addEventListener('click', stop);
  $('voice-mute').addEventListener('click', toggleMute);
}
