// Calls `fn` at most every `everyMs`; a call inside the wait is deferred to its end, so the
// last value always goes out (a knob or pad dragged fast sends its final position).

export function throttled(fn, everyMs) {
  let lastSent = 0;
  let pending = null;
  return function send() {
    const wait = lastSent + everyMs - performance.now();
    clearTimeout(pending);
    if (wait > 0) {
      pending = setTimeout(send, wait);
      return;
    }
    lastSent = performance.now();
    fn();
  };
}
