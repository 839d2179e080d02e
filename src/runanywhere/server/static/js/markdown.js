// A small Markdown renderer for chat replies: fenced code, inline code, bold, italic, headings, lists and
// paragraphs. Everything is HTML-escaped first, so model output can never inject markup. An unclosed fence
// (a reply still streaming) renders as a code block so far.
const escape = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function inline(text) {
  const codes = [];
  let out = escape(text).replace(/`([^`\n]+)`/g, (_, code) => { codes.push(code); return `\u0000${codes.length - 1}\u0000`; });
  out = out.replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>').replace(/(^|[^*])\*([^*\n]+)\*/g, '$1<em>$2</em>');
  return out.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${codes[Number(i)]}</code>`);
}

function blocks(text) {
  const html = [];
  let list = null;
  let para = [];
  const flushPara = () => { if (para.length) html.push(`<p>${inline(para.join('\n')).replace(/\n/g, '<br>')}</p>`); para = []; };
  const flushList = () => { if (list) html.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join('')}</${list.tag}>`); list = null; };
  for (const line of text.split('\n')) {
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (heading) { flushPara(); flushList(); html.push(`<h${heading[1].length + 2}>${inline(heading[2])}</h${heading[1].length + 2}>`); }
    else if (bullet || numbered) {
      flushPara();
      const tag = bullet ? 'ul' : 'ol';
      if (!list || list.tag !== tag) { flushList(); list = { tag, items: [] }; }
      list.items.push((bullet ?? numbered)[1]);
    } else if (!line.trim()) { flushPara(); flushList(); }
    else { flushList(); para.push(line); }
  }
  flushPara();
  flushList();
  return html.join('');
}

export function renderMarkdown(text) {
  const parts = text.split(/^```/m);
  let html = '';
  parts.forEach((part, i) => {
    if (i % 2 === 0) { html += blocks(part); return; }
    const newline = part.indexOf('\n');
    const lang = newline >= 0 ? part.slice(0, newline).trim() : '';
    const code = newline >= 0 ? part.slice(newline + 1) : '';
    html += `<pre><code${lang ? ` data-lang="${escape(lang)}"` : ''}>${escape(code.replace(/\n$/, ''))}</code></pre>`;
  });
  return html;
}

// Splits a reply into its `<think>…</think>` part (possibly still open) and the answer.
export function splitThinking(text) {
  const start = text.indexOf('<think>');
  if (start < 0) return { thinking: null, answer: text };
  const end = text.indexOf('</think>', start);
  if (end < 0) return { thinking: text.slice(start + 7), answer: text.slice(0, start), open: true };
  return { thinking: text.slice(start + 7, end), answer: text.slice(0, start) + text.slice(end + 8), open: false };
}
