// Audio in the browser: the microphone through an AudioWorklet, resampling, PCM16 and WAV, and a player
// that schedules streamed PCM chunks back to back and can stop at once (barge-in).
import { ApiError } from './api.js';

export function micProblem(err) {
  if (!window.isSecureContext) {
    return 'The microphone needs a secure context: open the app at http://localhost:8000 (or 127.0.0.1) or over https.';
  }
  if (err?.name === 'NotAllowedError') return 'Microphone access was refused: allow it in the browser\'s site settings and try again.';
  if (err?.name === 'NotFoundError') return 'No microphone was found on this computer.';
  return `The microphone is unavailable: ${err?.message ?? err}`;
}

// Opens the microphone; `onFrames(samples, level, rate)` receives each block. Returns { rate, close }.
export async function openMic(onFrames, { echoCancellation = true } = {}) {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) throw new ApiError(micProblem(null), 0, 'insecure');
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation, noiseSuppression: echoCancellation } });
  } catch (err) {
    throw new ApiError(micProblem(err), 0, 'microphone');
  }
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(new URL('./worklet.js', import.meta.url));
  const source = ctx.createMediaStreamSource(media);
  const node = new AudioWorkletNode(ctx, 'capture');
  const mute = ctx.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(ctx.destination);
  node.port.onmessage = ({ data }) => onFrames(data.samples, data.level, ctx.sampleRate);
  return {
    rate: ctx.sampleRate,
    close() { node.port.onmessage = null; media.getTracks().forEach((t) => t.stop()); ctx.close(); },
  };
}

export function resample(samples, from, to) {
  if (from === to) return samples;
  const out = new Float32Array(Math.floor(samples.length * to / from));
  const step = from / to;
  for (let i = 0; i < out.length; i += 1) {
    const x = i * step;
    const j = Math.floor(x);
    const frac = x - j;
    out[i] = samples[j] * (1 - frac) + (samples[j + 1] ?? samples[j]) * frac;
  }
  return out;
}

export function toPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i += 1) out[i] = Math.max(-1, Math.min(1, samples[i])) * 0x7fff;
  return out;
}

export function fromPcm16(bytes) {
  const ints = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 2));
  return Float32Array.from(ints, (v) => v / 0x8000);
}

export function base64ToBytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes) {
  let raw = '';
  for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(raw);
}

export function wav(samples, rate) {
  const pcm = toPcm16(samples);
  const view = new DataView(new ArrayBuffer(44 + pcm.byteLength));
  const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF'); view.setUint32(4, 36 + pcm.byteLength, true); text(8, 'WAVE'); text(12, 'fmt ');
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, 'data'); view.setUint32(40, pcm.byteLength, true);
  new Int16Array(view.buffer, 44).set(pcm);
  return new Blob([view.buffer], { type: 'audio/wav' });
}

export class PcmPlayer {
  constructor(rate) {
    this.rate = rate;
    this.ctx = new AudioContext();
    this.sources = new Set();
    this.reset();
  }

  reset() { this.startAt = null; this.endAt = 0; this.chunks = 0; }

  push(samples) {
    if (!samples.length) return;
    const buffer = this.ctx.createBuffer(1, samples.length, this.rate);
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const at = Math.max(this.endAt, this.ctx.currentTime + 0.03);
    this.startAt ??= at;
    source.start(at);
    this.endAt = at + buffer.duration;
    this.chunks += 1;
    this.sources.add(source);
    source.onended = () => { this.sources.delete(source); if (!this.sources.size) this.onidle?.(); };
  }

  get playing() { return this.sources.size > 0; }

  // Milliseconds of this reply the listener has heard so far.
  heardMs() { return this.startAt === null ? 0 : Math.max(0, (Math.min(this.ctx.currentTime, this.endAt) - this.startAt) * 1000); }

  stop() {
    for (const source of this.sources) { source.onended = null; source.stop(); }
    this.sources.clear();
    this.reset();
  }

  close() { this.stop(); this.ctx.close(); }
}
