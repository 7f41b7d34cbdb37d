// Arrow-key navigation over a grid of buttons with one tab stop (a roving tabindex).
// Columns are read from the layout, so it follows a responsive grid as it wraps. Items keep
// their place across re-renders (htmx swaps, live updates) by their data-key.

export function gridKeys(container, selector) {
  let current = null;
  let inside = false;

  const items = () => [...container.querySelectorAll(selector)];
  const keyOf = (item) => item.dataset.key;

  function columns(list) {
    if (list.length < 2) return 1;
    const top = list[0].getBoundingClientRect().top;
    const n = list.findIndex((item) => Math.abs(item.getBoundingClientRect().top - top) > 2);
    return n === -1 ? list.length : n;
  }

  function focus(item, move = false) {
    for (const other of items()) other.tabIndex = -1;
    item.tabIndex = 0;
    current = keyOf(item);
    if (move) item.focus();
  }

  // After a re-render: the same item keeps the tab stop, and the focus if it had it.
  function refresh() {
    const list = items();
    if (!list.length) return;
    const again = current && list.find((item) => keyOf(item) === current);
    const lostFocus = inside && (document.activeElement === document.body || !document.activeElement);
    focus(again || list[0], Boolean(again) && lostFocus);
  }

  container.addEventListener("keydown", (event) => {
    const list = items();
    const index = list.indexOf(event.target);
    if (index === -1) return;
    const cols = columns(list);
    const moves = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: cols,
      ArrowUp: -cols,
      Home: -index,
      End: list.length - 1 - index,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = list[Math.min(list.length - 1, Math.max(0, index + moves[event.key]))];
    focus(next, true);
  });
  container.addEventListener("focusin", (event) => {
    inside = true;
    if (event.target instanceof HTMLElement && event.target.matches(selector)) focus(event.target);
  });
  container.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !container.contains(event.relatedTarget)) inside = false;
  });

  return { refresh, focus: (item) => focus(item) };
}
