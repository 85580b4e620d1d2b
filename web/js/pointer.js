// Follows one pointer (mouse, pen or touch) from a press on `el` until it lifts or is
// cancelled: `onMove(event)` for every move, `onUp()` once at the end. The pointer is
// captured, so a drag that leaves the element keeps steering it.

export function followPointer(el, event, onMove, onUp) {
  el.focus();
  el.setPointerCapture(event.pointerId);
  const up = () => {
    onUp();
    el.removeEventListener("pointermove", onMove);
    el.removeEventListener("pointerup", up);
    el.removeEventListener("pointercancel", up);
  };
  el.addEventListener("pointermove", onMove);
  el.addEventListener("pointerup", up);
  el.addEventListener("pointercancel", up);
}
