// The dashboard's script: fetch the figures once a second, write them into the page.
// Every value is written as text (textContent, DOM nodes) or drawn on a canvas, never as
// markup: merchant names, URLs, descriptions and metadata are the merchants' own strings.
'use strict';

(() => {
  const ENDPOINT = '/v1/admin/dashboard';
  const REFRESH_MS = 1000;
  const COLOURS = ['#5aa9ff', '#3ccf8e', '#f2b84b', '#ef5b5b', '#b78cff', '#4dd0e1'];

  const byId = (id) => document.getElementById(id);

  function rate(value) {
    if (value === null || value === undefined) return '–';
    return value >= 100 ? value.toFixed(0) : value.toFixed(1);
  }

  function percent(value) {
    return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)} %`;
  }

  function millis(value) {
    return value === null || value === undefined ? '–' : `${value.toFixed(1)} ms`;
  }

  function cell(row, value, className) {
    const td = document.createElement('td');
    td.textContent = value === null || value === undefined || value === '' ? '–' : String(value);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function colourOf(index) {
    return COLOURS[index % COLOURS.length];
  }

  // ------------------------------------------------------------------ charts
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return { ctx, width, height };
  }

  // lines: [{label, colour, values: [number|null]}]; one value per second, oldest first.
  function drawChart(canvas, lines, options) {
    const { ctx, width, height } = prepare(canvas);
    const left = 44;
    const bottom = height - 16;
    const top = 6;
    const right = width - 6;
    const values = lines.flatMap((line) => line.values.filter((v) => v !== null));
    const fixedMax = options.max;
    const max = fixedMax !== undefined ? fixedMax : Math.max(1, ...values) * 1.15;
    const min = options.min || 0;
    const format = options.format || ((v) => v.toFixed(max < 10 ? 1 : 0));
    ctx.font = '11px "DejaVu Sans", sans-serif';
    ctx.strokeStyle = '#2a3642';
    ctx.fillStyle = '#8a9aaa';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 2; i += 1) {
      const value = min + ((max - min) * i) / 2;
      const y = bottom - ((bottom - top) * i) / 2;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillText(format(value), 2, y + 4);
    }
    const count = lines.length ? lines[0].values.length : 0;
    ctx.fillText(`-${count} s`, left, height - 3);
    ctx.fillText('now', right - 22, height - 3);
    const step = count > 1 ? (right - left) / (count - 1) : 0;
    lines.forEach((line) => {
      ctx.strokeStyle = line.colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let drawing = false;
      line.values.forEach((value, i) => {
        if (value === null) {
          drawing = false;
          return;
        }
        const x = left + i * step;
        const y = bottom - ((Math.min(value, max) - min) / (max - min)) * (bottom - top);
        if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        drawing = true;
      });
      ctx.stroke();
    });
    let legendX = left + 6;
    lines.forEach((line) => {
      if (!line.label) return;
      ctx.fillStyle = line.colour;
      ctx.fillRect(legendX, top + 2, 8, 8);
      ctx.fillStyle = '#d8e0e8';
      ctx.fillText(line.label, legendX + 12, top + 10);
      legendX += ctx.measureText(line.label).width + 28;
    });
  }

  // ------------------------------------------------------------------ panels
  function renderRails(rails) {
    const rows = rails.map((rail, index) => {
      const row = document.createElement('tr');
      row.dataset.rail = rail.rail;
      const name = cell(row, '', 'rail');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colourOf(index);
      name.replaceChildren(swatch, document.createTextNode(rail.rail));
      const breaker = cell(row, '', 'breaker');
      const badge = document.createElement('span');
      badge.className = `badge breaker-${rail.breaker}`;
      badge.textContent = rail.breaker.replace('_', '-');
      breaker.replaceChildren(badge);
      cell(row, rate(rail.calls_per_s), 'calls number');
      cell(row, percent(rail.success_rate), 'success number');
      cell(row, millis(rail.p50_ms), 'p50 number');
      cell(row, millis(rail.p99_ms), 'p99 number');
      return row;
    });
    byId('rails').tBodies[0].replaceChildren(...rows);
    drawChart(byId('success-chart'), rails.map((rail, index) => ({
      label: rail.rail, colour: colourOf(index), values: rail.series.success_rate,
    })), { min: 0, max: 1, format: (v) => `${(v * 100).toFixed(0)}%` });
    drawChart(byId('p99-chart'), rails.map((rail, index) => ({
      label: rail.rail, colour: colourOf(index), values: rail.series.p99_ms,
    })), {});
  }

  function renderMerchants(merchants) {
    const rows = merchants.map((merchant) => {
      const row = document.createElement('tr');
      cell(row, merchant.name, 'name');
      cell(row, merchant.id, 'id');
      cell(row, rate(merchant.creates_per_s), 'number');
      return row;
    });
    byId('merchants').tBodies[0].replaceChildren(...rows);
  }

  function renderCampaigns(campaigns) {
    const box = byId('campaigns');
    if (!campaigns.length) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = 'no campaigns';
      box.replaceChildren(empty);
      return;
    }
    box.replaceChildren(...campaigns.map((campaign) => {
      const item = document.createElement('div');
      item.className = 'budget';
      const label = document.createElement('p');
      label.className = 'sub';
      label.textContent = `${campaign.name} · ${campaign.spent} of ${campaign.budget} ${campaign.currency}`;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.min(100, (100 * campaign.spent) / Math.max(1, campaign.budget))}%`;
      bar.appendChild(fill);
      item.append(label, bar);
      return item;
    }));
  }

  function renderDeadLetters(letters) {
    const rows = letters.map((letter) => {
      const row = document.createElement('tr');
      cell(row, letter.id, 'id');
      cell(row, letter.type, 'type');
      cell(row, letter.merchant.name || letter.merchant.id, 'merchant');
      cell(row, letter.url, 'url');
      cell(row, letter.description, 'description');
      const metadata = Object.entries(letter.metadata || {}).map(([k, v]) => `${k}=${v}`);
      cell(row, metadata.join(', '), 'metadata');
      return row;
    });
    byId('dead-letter-list').tBodies[0].replaceChildren(...rows);
  }

  function render(figures) {
    byId('creates').textContent = rate(figures.creates_per_s);
    drawChart(byId('creates-chart'), [{
      label: '', colour: COLOURS[0], values: figures.series.creates_per_s,
    }], {});
    byId('grabs').textContent = rate(figures.red_packets.grabs_per_s);
    drawChart(byId('grabs-chart'), [{
      label: '', colour: COLOURS[1], values: figures.series.red_packet_grabs_per_s,
    }], {});
    byId('webhook-backlog').textContent = String(figures.webhooks.backlog);
    byId('webhook-queued').textContent = String(figures.webhooks.queued);
    byId('webhook-retrying').textContent = String(figures.webhooks.retrying);
    byId('dead-letters').textContent = String(figures.webhooks.dead_letters);
    renderRails(figures.rails);
    renderMerchants(figures.merchants);
    renderCampaigns(figures.campaigns);
    renderDeadLetters(figures.webhooks.newest_dead_letters);
    const at = new Date(figures.at * 1000).toLocaleTimeString();
    const status = byId('status');
    status.textContent = `figures to ${at}`;
    status.className = 'status';
  }

  function stale(message) {
    const status = byId('status');
    status.textContent = message;
    status.className = 'status stale';
  }

  async function refresh() {
    let response;
    try {
      response = await fetch(ENDPOINT, {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
    } catch (error) {
      stale('gateway unreachable; retrying');
      return;
    }
    if (response.status === 401) {
      window.location.assign('/dashboard'); // the session ended: back to the login form
      return;
    }
    if (!response.ok) {
      stale(`figures unavailable (HTTP ${response.status}); retrying`);
      return;
    }
    render(await response.json());
  }

  function loop() {
    refresh().finally(() => window.setTimeout(loop, REFRESH_MS));
  }

  loop();
})();
