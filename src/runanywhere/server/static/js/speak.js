// Speak: /v1/audio/speech streamed as WAV; playback starts with the first chunk (the first clause) while the
// rest is synthesised; the whole reply becomes a playable, downloadable WAV.
import { $, h, fixed } from './dom.js';
import { models, request } from './api.js';
import { PcmPlayer, fromPcm16, wav } from './audio.js';

// One option per voice: a voice model's id, or 'model|speaker' for each speaker of a loaded
// multi-voice model (Kokoro's jf_alpha ...), which /v1/models lists once the model is loaded.
async function voiceOptions() {
  return (await models('speech')).flatMap((m) => (m.voices?.length
    ? m.voices.map((v) => ({ value: `${m.id}|${v}`, label: `${m.id} · ${v}` }))
    : [{ value: m.id, label: m.id }]));
}

let player = null;

// Reads a streamed WAV: the header (sample rate, where the samples begin), then PCM16 as it arrives.
async function* wavStream(response) {
  const reader = response.body.getReader();
  let head = new Uint8Array(0);
  let rate = null;
  let carry = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let bytes = value;
    if (rate === null) {
      head = join(head, bytes);
      const view = new DataView(head.buffer);
      let at = 12;
      let dataAt = null;
      while (at + 8 <= head.length) {
        const id = String.fromCharCode(...head.subarray(at, at + 4));
        if (id === 'fmt ' && at + 16 <= head.length) rate = view.getUint32(at + 12, true);
        if (id === 'data') { dataAt = at + 8; break; }
        at += 8 + view.getUint32(at + 4, true);
      }
      if (dataAt === null || rate === null) continue;
      bytes = head.subarray(dataAt);
    }
    bytes = join(carry, bytes);
    const even = bytes.length - (bytes.length % 2);
    carry = bytes.slice(even);
    if (even) yield { rate, samples: fromPcm16(bytes.slice(0, even)) };
  }
}

function join(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function speak() {
  const text = $('tts-text').value.trim();
  if (!text) { $('tts-error').textContent = 'Type something to speak.'; return; }
  const [model, speaker] = $('tts-voice').value.split('|');
  $('tts-error').textContent = '';
  $('tts-speak').disabled = true;
  $('tts-metrics').textContent = 'Synthesising…';
  player?.close();
  player = null;
  const started = performance.now();
  let first = null;
  const parts = [];
  let rate = 0;
  try {
    const response = await request('/v1/audio/speech', { method: 'POST', json: {
      model: model || 'tts-1', voice: speaker || 'alloy', input: text, speed: Number($('tts-speed').value), response_format: 'wav' } });
    for await (const chunk of wavStream(response)) {
      rate = chunk.rate;
      player ??= new PcmPlayer(rate);
      first ??= performance.now() - started;
      player.push(chunk.samples);
      parts.push(chunk.samples);
    }
    const samples = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => { samples.set(p, at); return at + p.length; }, 0);
    const url = URL.createObjectURL(wav(samples, rate));
    Object.assign($('tts-audio'), { src: url, hidden: false });
    Object.assign($('tts-download'), { href: url, hidden: false });
    $('tts-metrics').textContent = `first audio after ${fixed(first)} ms · ${fixed(samples.length / rate, 2)} s of speech at ${rate} Hz in ${fixed(performance.now() - started)} ms`;
    $('panel-speak').dataset.done = 'true';
  } catch (err) {
    $('tts-metrics').textContent = '';
    $('tts-error').textContent = err.message;
  } finally {
    $('tts-speak').disabled = false;
  }
}

export function mount() {
  $('tts-speed').addEventListener('input', () => { $('tts-speed-value').textContent = Number($('tts-speed').value).toFixed(1); });
  $('tts-speak').addEventListener('click', speak);
  voiceOptions().then((list) => {
    $('tts-voice').replaceChildren(...list.map((v) => h('option', { value: v.value }, v.label)));
    if (!list.length) $('tts-error').textContent = 'No voice is installed: pull one in the Storage tab.';
  }).catch((err) => { $('tts-error').textContent = err.message; });
}
