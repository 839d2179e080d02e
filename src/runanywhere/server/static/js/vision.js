// Vision: an image from a file, a paste, a drop or the camera, described by a vision model (sent as a data:
// URL inside a chat message); Live describes a fresh camera frame every few seconds.
import { $, h, fixed } from './dom.js';
import { models, stream } from './api.js';
import { micProblem } from './audio.js';
import { generation } from './settings.js';

const LIVE_EVERY_MS = 4000;
const MAX_SIDE = 512;
let image = null; // data: URL
let camera = null;
let busy = false;
let timer = null;

function show(url) {
  image = url;
  Object.assign($('vision-preview'), { src: url, hidden: false });
  $('vision-describe').disabled = false;
}

function readFile(file) {
  if (!file?.type.startsWith('image/')) { $('vision-error').textContent = 'That is not an image.'; return; }
  const reader = new FileReader();
  reader.onload = () => show(reader.result);
  reader.readAsDataURL(file);
}

function frame() {
  const video = $('vision-video');
  const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const canvas = h('canvas', { width: Math.round(video.videoWidth * scale), height: Math.round(video.videoHeight * scale) });
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/jpeg', 0.85);
}

async function describe() {
  if (busy) return;
  if (camera) show(frame());
  if (!image) return;
  busy = true;
  $('vision-describe').disabled = true;
  $('vision-error').textContent = '';
  const answer = $('vision-answer');
  answer.textContent = '';
  $('vision-metrics').textContent = '';
  const started = performance.now();
  let first = null;
  let usage = null;
  let timings = null;
  try {
    const content = [{ type: 'text', text: $('vision-prompt').value }, { type: 'image_url', image_url: { url: image } }];
    const body = { model: $('vision-model').value, messages: [{ role: 'user', content }], stream: true,
      stream_options: { include_usage: true }, ...generation() };
    for await (const chunk of stream('/v1/chat/completions', body)) {
      if (chunk.usage) usage = chunk.usage;
      if (chunk.timings) timings = chunk.timings;
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) { first ??= performance.now() - started; answer.textContent += text; }
    }
    const t = timings ?? {};
    $('vision-metrics').textContent = [`image tokens ${t.image_tokens ?? '–'}`, `prompt tokens ${usage?.prompt_tokens ?? '–'}`,
      `first token ${fixed(t.time_to_first_token_ms ?? first)} ms`, `${fixed(t.decode_tokens_per_second, 1)} tokens/s`,
      `total ${fixed(performance.now() - started)} ms`].join(' · ');
    $('panel-vision').dataset.described = String(Number($('panel-vision').dataset.described ?? 0) + 1);
  } catch (err) {
    $('vision-error').textContent = err.message;
  } finally {
    busy = false;
    $('vision-describe').disabled = false;
  }
}

async function toggleCamera() {
  const video = $('vision-video');
  if (camera) {
    camera.getTracks().forEach((t) => t.stop());
    camera = null;
    video.hidden = true;
    $('vision-camera').textContent = 'Start camera';
    setLive(false);
    return;
  }
  try {
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) throw new Error('insecure');
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (err) {
    $('vision-error').textContent = micProblem(err).replace(/microphone/gi, 'camera');
    return;
  }
  video.srcObject = camera;
  video.hidden = false;
  $('vision-preview').hidden = true;
  $('vision-describe').disabled = false;
  $('vision-camera').textContent = 'Stop camera';
}

function setLive(on) {
  $('vision-live').checked = on;
  clearInterval(timer);
  timer = on ? setInterval(describe, LIVE_EVERY_MS) : null;
  if (on) describe();
}

export function mount() {
  $('vision-interval').textContent = String(LIVE_EVERY_MS / 1000);
  $('vision-file').addEventListener('change', () => readFile($('vision-file').files[0]));
  const drop = $('vision-drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); readFile(e.dataTransfer.files[0]); });
  document.addEventListener('paste', (e) => {
    if ($('panel-vision').hidden) return;
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith('image/'));
    if (item) readFile(item.getAsFile());
  });
  $('vision-camera').addEventListener('click', toggleCamera);
  $('vision-live').addEventListener('change', () => {
    if ($('vision-live').checked && !camera) { $('vision-error').textContent = 'Start the camera first for Live mode.'; setLive(false); return; }
    setLive($('vision-live').checked);
  });
  $('vision-describe').addEventListener('click', describe);
  models('vision').then((list) => {
    $('vision-model').replaceChildren(...list.map((m) => h('option', { value: m.id }, m.id)));
    if (!list.length) $('vision-error').textContent = 'No vision model is installed or registered on the server.';
  }).catch((err) => { $('vision-error').textContent = err.message; });
}
