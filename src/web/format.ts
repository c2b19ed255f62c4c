const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `14:03:27` in local time. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `14:03:27.042` in local time. */
export function clockMs(ms: number): string {
  return `${clock(ms)}.${pad(new Date(ms).getMilliseconds(), 3)}`;
}

/** `3 s ago`, `2 min ago`. */
export function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

export function bytes(perSecond: number): string {
  if (perSecond < 1024) return `${Math.round(perSecond)} B/s`;
  if (perSecond < 1024 * 1024) return `${(perSecond / 1024).toFixed(1)} KiB/s`;
  return `${(perSecond / 1024 / 1024).toFixed(1)} MiB/s`;
}

export const orDash = (v: number | string | null | undefined): string =>
  v === null || v === undefined ? '–' : String(v);
