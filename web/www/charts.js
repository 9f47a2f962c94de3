// A small line chart on a canvas: no dependencies, redrawn whole on every point (charts hold at
// most a few hundred points).

const PAD = { left: 40, right: 8, top: 8, bottom: 18 };

export class LineChart {
  /** `format` turns a value into its axis label. */
  constructor(canvas, { format = (v) => v.toFixed(2), color = '#2563eb' } = {}) {
    this.canvas = canvas;
    this.format = format;
    this.color = color;
    this.reset();
  }

  reset() {
    this.points = [];
    this.draw();
  }

  push(x, y) {
    if (!Number.isFinite(y)) return;
    this.points.push([x, y]);
    this.draw();
  }

  draw() {
    const { canvas, points } = this;
    canvas.dataset.points = String(points.length);
    canvas.dataset.last = points.length ? String(points[points.length - 1][1]) : '';
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillStyle = '#6b7280';
    ctx.strokeStyle = '#d1d5db';
    ctx.strokeRect(PAD.left, PAD.top, w - PAD.left - PAD.right, h - PAD.top - PAD.bottom);
    if (!points.length) {
      ctx.fillText('no data yet', PAD.left + 8, PAD.top + 16);
      return;
    }
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const px = (x) => PAD.left + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (w - PAD.left - PAD.right);
    const py = (y) => h - PAD.bottom - ((y - y0) / (y1 - y0)) * (h - PAD.top - PAD.bottom);
    ctx.textAlign = 'right';
    ctx.fillText(this.format(y1), PAD.left - 4, PAD.top + 8);
    ctx.fillText(this.format(y0), PAD.left - 4, h - PAD.bottom);
    ctx.textAlign = 'left';
    ctx.fillText(`step ${x0}`, PAD.left, h - 4);
    ctx.textAlign = 'right';
    ctx.fillText(`${x1}`, w - PAD.right, h - 4);
    ctx.strokeStyle = this.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    if (points.length < 40) {
      ctx.fillStyle = this.color;
      for (const [x, y] of points) ctx.fillRect(px(x) - 1.5, py(y) - 1.5, 3, 3);
    }
    const [lx, ly] = points[points.length - 1];
    ctx.fillStyle = '#111827';
    ctx.textAlign = 'right';
    ctx.fillText(this.format(ly), Math.max(px(lx) - 4, PAD.left + 30), Math.max(py(ly) - 4, PAD.top + 10));
  }
}
