// The servers the widget's browser suite talks to, all on 127.0.0.1 and
// free ports: a real SMTP server (smtp-server), a fake OpenAI-compatible
// model, the host pages (reached as http://localhost:<port>, another
// origin than the API), and the chatdesk debug binary on a fresh SQLite
// database in a temporary directory.

import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';

const run = promisify(execFile);

/** Resolves when `server` (net or http) listens on 127.0.0.1; returns its port. */
function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

function close(server) {
  return new Promise((resolve) => {
    if (server.closeAllConnections) server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A port nobody listens on now (taken and released at once). */
export async function freePort() {
  const probe = createNetServer();
  const port = await listen(probe);
  await close(probe);
  return port;
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function eventually(what, check, ms = 10000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not seen within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The header section's fields (folded lines joined), lower-cased name → first value. */
function headerFields(head) {
  const fields = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!(name in fields)) fields[name] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** A part's body decoded by its Content-Transfer-Encoding, with \n line ends. */
function decodeBody(fields, body) {
  const encoding = (fields['content-transfer-encoding'] || '').toLowerCase();
  let bytes;
  if (encoding === 'base64') {
    bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  } else if (encoding === 'quoted-printable') {
    const soft = body.replace(/=\r\n/g, '');
    const out = [];
    for (let i = 0; i < soft.length; i += 1) {
      if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
        out.push(parseInt(soft.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        out.push(...Buffer.from(soft[i], 'utf8'));
      }
    }
    bytes = Buffer.from(out);
  } else {
    bytes = Buffer.from(body, 'utf8');
  }
  return bytes.toString('utf8').replace(/\r\n/g, '\n');
}

/** The first part of type `wanted` (looking into multipart bodies), decoded. */
function findPart(fields, body, wanted) {
  const type = fields['content-type'] || 'text/plain';
  if (type.toLowerCase().startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) return null;
    const pieces = `\r\n${body}`.split(`\r\n--${boundary}`).slice(1);
    for (const piece of pieces) {
      if (piece.startsWith('--')) break;
      // The rest of the delimiter line, then the part: headers, a blank line, the body.
      const part = piece.slice(piece.indexOf('\r\n') + 2);
      const split = part.startsWith('\r\n') ? -2 : part.indexOf('\r\n\r\n');
      const head = split < 0 ? '' : part.slice(0, split);
      const found = findPart(headerFields(head), split === -1 ? '' : part.slice(split + 4), wanted);
      if (found !== null) return found;
    }
    return null;
  }
  return type.toLowerCase().startsWith(wanted) ? decodeBody(fields, body) : null;
}

/**
 * A raw RFC 5322 message as the tests read it: its header fields
 * (lower-cased names) and its plain text (the text/plain part, decoded).
 */
export function parseMail(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4).replace(/\r\n$/, '');
  const headers = headerFields(head);
  return { headers, text: findPart(headers, body, 'text/plain') ?? '' };
}

/** A real SMTP server that keeps every message it accepts. */
export async function startSmtp() {
  const messages = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push({
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMail(raw),
        });
        callback();
      });
    },
  });
  const port = await listen(server.server);
  return { port, messages, stop: () => new Promise((r) => server.close(r)) };
}

/** The reply the fake model gives to a generation request, by question. */
export const GENERATED = {
  name: 'Pay by bank transfer',
  description: 'How to switch the invoice payment method to a bank transfer',
  answer: 'Open Billing, choose Payment method, then pick Bank transfer and save.',
};

/** The reply to a question asking about "markup": HTML that must stay text. */
export const GENERATED_MARKUP = {
  name: 'Embed <b>bold</b> text',
  description: 'Formatting in the editor',
  answer: 'Type <img src=x onerror="window.cdInjected=1"> in the editor, then press Save.',
};

/**
 * A fake OpenAI-compatible model: `POST /v1/chat/completions` answers as
 * the API would (a chat.completion with usage), telling chatdesk's two
 * requests apart by their system prompt: a generation gets the JSON Flow
 * of GENERATED (GENERATED_MARKUP for a question about markup), a ranking
 * `{"choice": null}`. Every request is kept.
 */
export async function startModel() {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const reply = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        return reply(404, { error: { message: `Unknown request URL: ${req.method} ${req.url}`, type: 'invalid_request_error', code: 'unknown_url' } });
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error' } });
      }
      const system = body.messages?.[0]?.content ?? '';
      const question = body.messages?.[1]?.content ?? '';
      requests.push({ authorization: req.headers.authorization, body, system, question });
      let content;
      if (system.startsWith('You are chatdesk, the help assistant')) {
        content = JSON.stringify(/markup/i.test(question) ? GENERATED_MARKUP : GENERATED);
      } else if (system.startsWith("You are chatdesk's matcher")) {
        content = JSON.stringify({ choice: null });
      } else {
        return reply(400, { error: { message: 'Unexpected prompt', type: 'invalid_request_error' } });
      }
      reply(200, {
        id: `chatcmpl-${requests.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 120, completion_tokens: 40, total_tokens: 160 },
      });
    });
  });
  const port = await listen(server);
  return { port, requests, stop: () => close(server) };
}

/**
 * The host pages. `pages` maps a path to a function of the request's URL
 * returning `{headers, body}`; anything else is a 404.
 */
export async function startPages(pages) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const page = pages[url.pathname];
    if (!page) {
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
      return res.end();
    }
    const { headers, body } = page(url);
    res.writeHead(200, { 'cache-control': 'no-store', ...headers });
    res.end(body);
  });
  const port = await listen(server);
  return { port, stop: () => close(server) };
}

/**
 * chatdesk itself: `chatdesk migrate`, then `seed(cli)` (running the
 * command line before serving, so the server reads its changes at once;
 * what it returns is kept as `seeded`), then `chatdesk serve` on a free
 * port until `stop()`. Its log goes to `logPath` (kept) or into the
 * temporary directory; `logTail()` reads it.
 */
export async function startChatdesk({ binary, env, seed, logPath: keptLog }) {
  const dir = mkdtempSync(join(tmpdir(), 'chatdesk-browser-'));
  const fullEnv = {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, 'chatdesk.sqlite3')}`,
    RUST_LOG: 'warn',
    HTTP_WORKERS: '2',
    ...env,
  };
  const logPath = keptLog || join(dir, 'server.log');
  const logTail = () => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '';
    }
  };
  let child = null;
  let exited = null;
  const kill = () => {
    if (child && exited === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  // Never leave the server or its files behind, however this process ends.
  process.on('exit', kill);
  const cli = async (...args) => (await run(binary, args, { env: fullEnv })).stdout;
  let seeded;
  let origin;
  let port;
  try {
    await cli('migrate');
    seeded = await seed(cli);
    port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    const log = openSync(logPath, 'w');
    child = spawn(binary, ['serve', '--bind', `127.0.0.1:${port}`], {
      env: fullEnv,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    await eventually('chatdesk serve answering /healthz', async () => {
      if (exited) throw new Error(`chatdesk serve exited (${JSON.stringify(exited)}):\n${logTail()}`);
      const res = await fetch(`${origin}/healthz`);
      return res.ok;
    }, 20000);
  } catch (error) {
    process.off('exit', kill);
    kill();
    throw error;
  }
  const stop = async () => {
    process.off('exit', kill);
    if (exited === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { origin, port, seeded, logTail, stop };
}

/** A small client of the dashboard API with the owner's token. */
export function dashboard(origin, token) {
  return async function call(method, path, body) {
    const res = await fetch(`${origin}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
}
