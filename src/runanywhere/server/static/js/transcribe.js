// Transcribe: a file (WAV/FLAC/OGG/MP3) or Live from the microphone, cut into utterances by an energy VAD in
// the page (each sent to /v1/audio/transcriptions as it ends); segment timestamps, copy, .txt and .srt.
import { $, h, download } from './dom.js';
import { models, request } from './api.js';
import { openMic, resample, wav } from './audio.js';

const RATE = 16000;
const SILENCE_END_MS = 700;
const MIN_SPEECH_MS = 250;
const PREROLL_MS = 300;
let segments = [];
let live = null;

async function sttModel() {
  const list = await models('transcription');
  return list[0]?.id ?? 'whisper-1';
}

async function transcribe(blob, name) {
  const form = new FormData();
  form.append('file', blob, name);
  form.append('model', await sttModel());
  form.append('response_format', 'verbose_json');
  form.append('timestamp_granularities[]', 'segment');
  return (await request('/v1/audio/transcriptions', { method: 'POST', body: form })).json();
}

const stamp = (s, sep) => {
  const ms = Math.round(s * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${sep}${pad(ms % 1000, 3)}`;
};

function add(result, offset = 0) {
  const parts = result.segments?.length ? result.segments : [{ start: 0, end: result.duration ?? 0, text: result.text }];
  for (const seg of parts) {
    const item = { start: seg.start + offset, end: seg.end + offset, text: seg.text.trim() };
    if (!item.text) continue;
    segments.push(item);
    $('stt-segments').append(h('li', {}, h('time', {}, `${stamp(item.start, '.')} → ${stamp(item.end, '.')}`), item.text));
  }
  $('stt-text').textContent = segments.map((s) => s.text).join(' ');
}

const plain = () => segments.map((s) => s.text).join('\n');
const srt = () => segments.map((s, i) => `${i + 1}\n${stamp(s.start, ',')} --> ${stamp(s.end, ',')}\n${s.text}\n`).join('\n');

async function upload(file) {
  segments = [];
  $('stt-segments').replaceChildren();
  $('stt-text').textContent = '';
  $('stt-error').textContent = '';
  $('stt-state').textContent = `Transcribing ${file.name}…`;
  try {
    add(await transcribe(file, file.name));
    $('stt-state').textContent = `${file.name}: done.`;
  } catch (err) {
    $('stt-state').textContent = '';
    $('stt-error').textContent = err.message;
  }
}

// An utterance detector on the microphone's level: speech starts above an adaptive threshold and ends after
// SILENCE_END_MS below it; each utterance (with PREROLL_MS before it) is transcribed as soon as it ends.
class Utterances {
  constructor(onUtterance) {
    this.onUtterance = onUtterance;
    this.floor = 0.005;
    this.buffer = [];
    this.speaking = false;
    this.quietMs = 0;
    this.speechMs = 0;
    this.clock = 0;
    this.startedAt = 0;
  }

  push(samples, level) {
    const ms = (samples.length / RATE) * 1000;
    const loud = level > Math.max(0.015, this.floor * 4);
    if (!this.speaking) this.floor = 0.95 * this.floor + 0.05 * Math.min(level, 0.05);
    this.buffer.push(samples);
    this.clock += ms;
    if (loud) {
      if (!this.speaking) { this.speaking = true; this.speechMs = 0; this.startedAt = this.clock - ms - PREROLL_MS; }
      this.speechMs += ms;
      this.quietMs = 0;
    } else if (this.speaking) {
      this.quietMs += ms;
      if (this.quietMs >= SILENCE_END_MS) {
        this.speaking = false;
        if (this.speechMs >= MIN_SPEECH_MS) this.onUtterance(concat(this.buffer), Math.max(0, this.startedAt / 1000));
        this.buffer = [];
      }
    }
    if (!this.speaking) { // keep only the pre-roll while waiting for speech
      let kept = 0;
      for (let i = this.buffer.length - 1; i >= 0; i -= 1) {
        kept += this.buffer[i].length;
        if (kept >= (PREROLL_MS / 1000) * RATE) { this.buffer = this.buffer.slice(i); break; }
      }
    }
  }
}

function concat(chunks) {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

async function toggleLive() {
  const button = $('stt-live');
  if (live) {
    live.close();
    live = null;
    button.textContent = 'Live from microphone';
    $('stt-state').textContent = 'Stopped.';
    $('stt-level').value = 0;
    return;
  }
  $('stt-error').textContent = '';
  let pending = Promise.resolve();
  const cutter = new Utterances((samples, offset) => {
    pending = pending.then(async () => {
      try { add(await transcribe(wav(samples, RATE), 'utterance.wav'), offset); } catch (err) { $('stt-error').textContent = err.message; }
    });
  });
  try {
    live = await openMic((samples, level, rate) => {
      $('stt-level').value = Math.min(1, level * 5);
      cutter.push(resample(samples, rate, RATE), level);
    }, { echoCancellation: false });
  } catch (err) {
    $('stt-error').textContent = err.message;
    return;
  }
  button.textContent = 'Stop live';
  $('stt-state').textContent = 'Listening: text appears as each utterance ends.';
}

export function mount() {
  $('stt-file').addEventListener('change', () => { const file = $('stt-file').files[0]; if (file) upload(file); });
  $('stt-live').addEventListener('click', toggleLive);
  $('stt-copy').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(plain()); $('stt-state').textContent = 'Copied.'; } catch (err) { $('stt-error').textContent = `Copy failed: ${err.message}`; }
  });
  $('stt-txt').addEventListener('click', () => download('transcript.txt', new Blob([plain()], { type: 'text/plain' })));
  $('stt-srt').addEventListener('click', () => download('transcript.srt', new Blob([srt()], { type: 'application/x-subrip' })));
}
