// The app shell: keyboard-usable tabs (arrow keys, Home/End), each tab's module mounted once, and the
// server's reachability shown in the header.
import { $ } from './dom.js';
import { getJSON, onReachability } from './api.js';
import * as chat from './chat.js';
import * as vision from './vision.js';
import * as voice from './voice.js';
import * as transcribe from './transcribe.js';
import * as speak from './speak.js';
import * as storage from './storage.js';
import * as settings from './settings.js';

const onShow = { storage: storage.refresh, settings: settings.showAbout, chat: () => chat.refreshModels().catch(() => {}) };

function select(tab) {
  for (const other of document.querySelectorAll('[role=tab]')) {
    const on = other === tab;
    other.setAttribute('aria-selected', String(on));
    other.tabIndex = on ? 0 : -1;
    $(other.getAttribute('aria-controls')).hidden = !on;
  }
  const name = tab.id.replace('tab-', '');
  history.replaceState(null, '', `#${name}`);
  onShow[name]?.();
}

function tabs() {
  const all = [...document.querySelectorAll('[role=tab]')];
  for (const tab of all) {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (event) => {
      const i = all.indexOf(tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: all.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      const target = all[(next + all.length) % all.length];
      target.focus();
      select(target);
    });
  }
  const start = $(`tab-${location.hash.slice(1)}`);
  if (start) select(start);
}

async function health() {
  const status = $('server-status');
  try {
    const response = await fetch('/health');
    const ok = response.ok;
    status.className = ok ? 'status' : 'status bad';
    status.textContent = ok ? 'Connected to the local server: everything runs on this machine.' : 'The server is still loading models…';
    if (!ok) setTimeout(health, 2000);
  } catch {
    status.className = 'status bad';
    status.textContent = 'The local server is unreachable: start it with `runanywhere serve`.';
    setTimeout(health, 3000);
  }
}

onReachability((ok) => { if (!ok) health(); });
settings.mount();
for (const module of [chat, vision, voice, transcribe, speak, storage]) module.mount();
tabs();
health();
getJSON('/app/about').catch(() => {}); // warm the About facts (the bandwidth is measured once)
