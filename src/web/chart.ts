/** Samples a chart holds: 60 s at four updates a second, as the server samples. */
export const CHART_SAMPLES = 240;
const WIDTH = 120;
const HEIGHT = 26;

/** A small line chart of values 0-99 on a canvas (drawn, so nothing in it is markup). */
export function newChart(): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  const scale = window.devicePixelRatio || 1;
  canvas.width = WIDTH * scale;
  canvas.height = HEIGHT * scale;
  canvas.style.width = `${WIDTH}px`;
  canvas.style.height = `${HEIGHT}px`;
  return canvas;
}

export function drawChart(canvas: HTMLCanvasElement, values: Array<number | null>): void {
  const g = canvas.getContext('2d');
  if (g === null) return;
  const scale = canvas.width / WIDTH;
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.clearRect(0, 0, WIDTH, HEIGHT);
  g.strokeStyle = '#d0d7de';
  g.beginPath();
  g.moveTo(0, HEIGHT - 0.5);
  g.lineTo(WIDTH, HEIGHT - 0.5);
  g.stroke();
  g.strokeStyle = '#1f6feb';
  g.lineWidth = 1.5;
  g.beginPath();
  const step = WIDTH / (CHART_SAMPLES - 1);
  const offset = CHART_SAMPLES - values.length; // newest at the right edge
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    const x = (offset + i) * step;
    const y = HEIGHT - 2 - (v / 99) * (HEIGHT - 4);
    if (drawing) g.lineTo(x, y);
    else g.moveTo(x, y);
    drawing = true;
  });
  g.stroke();
}
