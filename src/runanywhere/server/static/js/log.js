// The app's own console log, filtered by the log level chosen in Settings.
const LEVELS = { debug: 10, info: 20, warning: 30, error: 40 };
let threshold = LEVELS.info;

export function setLogLevel(level) { threshold = LEVELS[level] ?? LEVELS.info; }

function emit(level, method, args) {
  if (LEVELS[level] >= threshold) console[method]('[runanywhere]', ...args);
}

export const log = {
  debug: (...args) => emit('debug', 'debug', args),
  info: (...args) => emit('info', 'info', args),
  warning: (...args) => emit('warning', 'warn', args),
  error: (...args) => emit('error', 'error', args),
};
