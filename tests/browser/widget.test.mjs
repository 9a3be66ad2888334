// The chat widget as a visitor uses it, in headless Chromium: the real
// chatdesk server (debug binary, fresh SQLite database) serving
// /widget.js and the SDK API on http://127.0.0.1:<api>, host pages on
// another origin (http://localhost:<pages> and subdomains of localhost,
// so every SDK call is a real cross-origin request with its preflight),
// a real SMTP server for the ticket email and a fake OpenAI-compatible
// model. Run by tests/browser/run.sh (make test-browser).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import {
  dashboard, eventually, freePort, GENERATED, GENERATED_MARKUP, startChatdesk, startModel, startPages, startSmtp,
} from './servers.mjs';
import { hostPages, userHash, VISITOR } from './pages.mjs';

const ROOT = process.env.CHATDESK_ROOT || resolve(import.meta.dirname, '../..');
const BINARY = process.env.CHATDESK_BIN || join(ROOT, 'target/debug/chatdesk');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || join(ROOT, 'target/browser-screenshots');
const SUPPORT_EMAIL = 'support@acme.test';
const INVITE = 'Invite a teammate';
const BILLING_TIP = 'Billing history';
// The main site's theme; the widget takes its colours.
const THEME = { primaryColor: '#0f766e', backgroundColor: '#ffffff', textColor: '#111827', fontFamily: 'DejaVu Sans, sans-serif' };
const OUT_OF_CREDITS = 'Our assistant is resting today; write to help@beta.test.';
// How long one browser action or wait may take, and one test in all.
const ACTION_TIMEOUT = 10000;
const TEST_TIMEOUT = 40000;

// A stop from outside (Ctrl-C, run.sh's time limit) still runs the exit
// handlers that kill the chatdesk server.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

let smtp; let model; let api; let pages; let browser; let owner;
const seeded = { keys: {}, sites: {}, content: {}, identitySecret: null };

/**
 * Seeds through the command line (before the server starts): Acme on PRO
 * with 100 AI credits, and Beta on PRO with none.
 */
async function seedTenants(cli) {
  const create = async (name) => JSON.parse(await cli('tenant', 'create', '--name', name, '--plan', 'PRO', '--owner-email', `owner@${name.toLowerCase()}.test`));
  const acme = await create('Acme');
  await cli('tenant', 'add-credits', acme.tenantId, '100');
  const beta = await create('Beta');
  return { acme, beta };
}

/** A site with a mapped domain and its widget, published unless told otherwise. */
async function seedSite(name, domain, widget, { publish = true, pause = false, call = owner, theme } = {}) {
  const { site, apiKey } = await call('POST', '/sites', { domain, name, allowSubdomains: false, ...(theme ? { theme } : {}) });
  await call('PUT', `/sites/${site.id}/mapping`, { status: 'COMPLETED' });
  await call('PUT', `/sites/${site.id}/widget`, {
    welcomeMessage: 'Hi! Ask me anything about Acme.',
    disclaimer: 'Answers are written by an AI assistant.',
    position: 'BOTTOM_RIGHT',
    supportEmail: SUPPORT_EMAIL,
    rateLimitPerSession: 20,
    ...widget,
  });
  if (publish) await call('POST', `/sites/${site.id}/widget/publish`);
  if (pause) await call('POST', `/sites/${site.id}/widget/pause`);
  return { site, apiKey };
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  smtp = await startSmtp();
  model = await startModel();
  api = await startChatdesk({
    binary: BINARY,
    env: {
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      MAIL_FROM: 'Acme help <help@chatdesk.test>',
      LLM_BASE_URL: `http://127.0.0.1:${model.port}/v1`,
      LLM_MODEL: 'fake-model',
      LLM_API_KEY: 'sk-browser-suite',
    },
    seed: seedTenants,
    logPath: process.env.CHATDESK_LOG,
  });
  owner = dashboard(api.origin, api.seeded.acme.token);
  const sites = {
    main: await seedSite('Acme', 'localhost', {}, { theme: THEME }),
    limited: await seedSite('Acme limited', 'limited.localhost', { rateLimitPerSession: 1, position: 'TOP_LEFT' }),
    paused: await seedSite('Acme paused', 'paused.localhost', {}, { pause: true }),
    draft: await seedSite('Acme draft', 'draft.localhost', {}, { publish: false }),
    broke: await seedSite('Beta', 'beta.localhost', { insufficientCreditsMessage: OUT_OF_CREDITS }, {
      call: dashboard(api.origin, api.seeded.beta.token),
    }),
  };
  for (const [name, { site, apiKey }] of Object.entries(sites)) {
    seeded.sites[name] = site;
    seeded.keys[name] = apiKey;
  }
  for (const siteName of ['main', 'limited']) {
    const siteId = seeded.sites[siteName].id;
    const flow = await owner('POST', `/sites/${siteId}/content`, {
      kind: 'FLOW', name: INVITE, description: 'Where the invite button is', status: 'PUBLISHED', audiences: [],
    });
    await owner('POST', `/sites/${siteId}/content`, {
      kind: 'TOOLTIP', name: BILLING_TIP, description: 'Past invoices and receipts', status: 'PUBLISHED', audiences: [],
    });
    seeded.content[siteName] = flow;
  }
  seeded.identitySecret = (await owner('POST', `/sites/${seeded.sites.main.id}/identity-secret`)).identitySecret;
  const deadApi = `http://127.0.0.1:${await freePort()}`;
  pages = await startPages(hostPages(() => ({
    api: api.origin, deadApi, keys: seeded.keys, identitySecret: seeded.identitySecret,
  })));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Every *.localhost name is this machine, whatever the resolver says.
    args: ['--host-resolver-rules=MAP localhost 127.0.0.1, MAP *.localhost 127.0.0.1'],
  });
  console.log(`browser suite: chatdesk at ${api.origin}, pages at http://localhost:${pages.port}, Chromium ${browser.version()}`);
  console.log(`browser suite: screenshots in ${SHOTS}`);
});

after(async () => {
  const stops = [browser?.close(), pages?.stop(), api?.stop(), model?.stop(), smtp?.stop()];
  await Promise.allSettled(stops);
});

/**
 * A page in a fresh browser context (a new visitor: empty localStorage),
 * with the page's uncaught errors and console errors collected;
 * `beforeLoad(page)` may listen to the page before it loads.
 */
async function visit(t, host, query = '', beforeLoad = () => {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  const page = await context.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  t.after(() => context.close());
  beforeLoad(page);
  const url = `http://${host}:${pages.port}/page${query ? `?${query}` : ''}`;
  const response = await page.goto(url);
  assert.equal(response.status(), 200, url);
  return { page, pageErrors, consoleErrors };
}

function shot(page, name) {
  return page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

const hostLog = (page, type) => page.evaluate((t) => window.hostLog.filter((e) => e.type === t), type);

function widget(page) {
  const dialog = page.getByRole('dialog', { name: 'Chat', exact: true });
  const log = dialog.getByRole('log', { name: 'Conversation', exact: true });
  return {
    host: page.locator('#chatdesk-widget'),
    launcher: page.getByRole('button', { name: 'Open chat', exact: true }),
    dialog,
    log,
    input: dialog.getByRole('textbox', { name: 'Your question', exact: true }),
    send: dialog.getByRole('button', { name: 'Send', exact: true }),
    close: dialog.getByRole('button', { name: 'Close chat', exact: true }),
    userBubbles: log.locator('[data-role="USER"]'),
    answers: log.locator('[data-role="ASSISTANT"]'),
    alerts: page.getByRole('alert'),
    helpful: dialog.getByRole('button', { name: 'Helpful', exact: true }),
    notHelpful: dialog.getByRole('button', { name: 'Not helpful', exact: true }),
    openTicket: dialog.getByRole('button', { name: 'Open a support ticket', exact: true }),
    guide: (name) => dialog.getByRole('button', { name: `Open guide: ${name}`, exact: true }),
  };
}

/** Opens the panel with the launcher and checks the panel shows. */
async function openChat(w) {
  await w.launcher.click();
  await w.dialog.waitFor({ state: 'visible' });
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true');
}

/** Types a question, sends it and waits for an answer containing `expect`. */
async function ask(w, question, expect) {
  const before = await w.answers.count();
  await w.input.fill(question);
  await w.send.click();
  await w.userBubbles.filter({ hasText: question }).waitFor();
  const answer = expect ? w.answers.filter({ hasText: expect }).last() : w.answers.nth(before);
  await answer.waitFor();
  return answer;
}

/** The dashboard's record of the session in which `question` was asked on `site`. */
async function conversationWith(site, question) {
  return eventually(`a conversation asking ${JSON.stringify(question)}`, async () => {
    const { items } = await owner('GET', `/sites/${seeded.sites[site].id}/conversations?limit=100`);
    for (const item of items) {
      const detail = await owner('GET', `/sites/${seeded.sites[site].id}/conversations/${item.id}`);
      if (detail.messages.some((m) => m.role === 'USER' && m.content === question)) return detail;
    }
    return null;
  }, 5000);
}

const isPressed = (button) => button.getAttribute('aria-pressed');

describe('the chat widget in Chromium', () => {
  test('a closed gate (a paused widget, a widget never published) adds nothing to the page', { timeout: TEST_TIMEOUT }, async (t) => {
    for (const [site, reason] of [['paused', 'WIDGET_PAUSED'], ['draft', 'WIDGET_NOT_PUBLISHED']]) {
      const { page, pageErrors } = await visit(t, `${site}.localhost`, `site=${site}`);
      const ready = await eventually(`the ready event on ${site}.localhost`, async () => (await hostLog(page, 'ready'))[0], 10000);
      assert.deepEqual(ready.detail.enabled, false, JSON.stringify(ready));
      assert.equal(ready.detail.reason, reason);
      const w = widget(page);
      assert.equal(await w.host.count(), 0, 'no #chatdesk-widget element');
      assert.equal(await w.launcher.count(), 0, 'no launcher');
      assert.equal(await page.locator('body > *').count(), 2, 'the body holds only the page\'s own header and main');
      assert.deepEqual(pageErrors, []);
      await shot(page, `01-closed-gate-${site}`);
    }
  });

  test('a page on a foreign origin (its host is not the site\'s domain) gets no widget', { timeout: TEST_TIMEOUT }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(ACTION_TIMEOUT);
    t.after(() => context.close());
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const configCall = page.waitForEvent('requestfailed', {
      predicate: (r) => r.url().includes('/api/v1/sdk/chat/config'),
      timeout: 10000,
    });
    await page.goto(`http://127.0.0.1:${pages.port}/page?site=main`);
    await configCall;
    // Whatever the widget does after its config call failed, it does it now.
    await page.waitForTimeout(500);
    const w = widget(page);
    assert.equal(await w.host.count(), 0, 'no #chatdesk-widget element');
    assert.equal(await w.launcher.count(), 0, 'no launcher');
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await hostLog(page, 'error'), []);
    assert.deepEqual(await hostLog(page, 'rejection'), []);
    await shot(page, '02-foreign-origin');
  });

  test('a question naming a published guide gets its "Open guide" button, and only a click fires the content event', { timeout: TEST_TIMEOUT }, async (t) => {
    const configCalls = [];
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main', (p) => p.on('request', (r) => {
      if (r.url().startsWith(`${api.origin}/api/v1/sdk/chat/config`)) configCalls.push(r);
    }));
    const w = widget(page);
    await w.launcher.waitFor();
    assert.equal(await w.launcher.getAttribute('aria-expanded'), 'false');
    const ready = await eventually('the ready event', async () => {
      const seen = await hostLog(page, 'ready');
      return seen.length > 0 && seen;
    }, 5000);
    assert.equal(ready.length, 1, 'one ready event');
    assert.equal(ready[0].detail.enabled, true);
    // The widget is configured BOTTOM_RIGHT: the launcher sits in that corner of the viewport.
    const box = await w.launcher.boundingBox();
    assert.ok(box.x > 1100 / 2 && box.y > 760 / 2, `launcher at ${JSON.stringify(box)}`);
    // In the site's theme colour (#0f766e).
    assert.equal(await w.launcher.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(15, 118, 110)');
    // The config call went from the page's origin to the API's: a cross-origin call.
    assert.ok(configCalls.length >= 1, 'the widget asked for its config');
    assert.equal(await configCalls[0].headerValue('origin'), `http://localhost:${pages.port}`);
    await shot(page, '03-launcher');
    await openChat(w);
    await w.dialog.getByText('Hi! Ask me anything about Acme.').waitFor();
    await w.dialog.getByText('Answers are written by an AI assistant.').waitFor();
    await shot(page, '04-panel-open');

    const modelCalls = model.requests.length;
    const question = 'How do I invite a teammate to my project?';
    await ask(w, question);
    const button = w.guide(INVITE);
    await button.waitFor();
    assert.equal(model.requests.length, modelCalls, 'a name match calls no model');
    assert.deepEqual(await hostLog(page, 'content'), [], 'no content event before the click');
    await shot(page, '05-matched-guide');
    await button.click();
    const events = await eventually('the content event', async () => {
      const seen = await hostLog(page, 'content');
      return seen.length > 0 && seen;
    }, 5000);
    const flow = seeded.content.main;
    assert.deepEqual(events.map((e) => e.detail), [{ kind: 'FLOW', id: flow.id, name: INVITE }]);
    const detail = await conversationWith('main', question);
    const reply = detail.messages.find((m) => m.role === 'ASSISTANT');
    assert.equal(reply.status, 'MATCHED_CONTENT');
    assert.deepEqual(reply.contentRef, { kind: 'FLOW', id: flow.id, name: INVITE });
    assert.deepEqual(pageErrors, []);
  });

  test('a question no guide answers is answered through the model, with a button for the drafted guide', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    const question = 'Can I pay by bank transfer?';
    const answer = await ask(w, question, GENERATED.answer);
    assert.match(await answer.innerText(), /Open Billing, choose Payment method/);
    await w.guide(GENERATED.name).waitFor();
    const generation = model.requests.find((r) => r.question === question && r.system.startsWith('You are chatdesk, the help assistant'));
    assert.ok(generation, 'the model was asked to draft a guide for the question');
    assert.equal(generation.body.model, 'fake-model');
    assert.equal(generation.authorization, 'Bearer sk-browser-suite');
    await shot(page, '06-generated-answer');
    await w.guide(GENERATED.name).click();
    const events = await eventually('the content event', async () => {
      const seen = await hostLog(page, 'content');
      return seen.length > 0 && seen;
    }, 5000);
    assert.equal(events.length, 1);
    assert.equal(events[0].detail.kind, 'FLOW');
    assert.equal(events[0].detail.name, GENERATED.name);
    const detail = await conversationWith('main', question);
    const reply = detail.messages.find((m) => m.role === 'ASSISTANT');
    assert.equal(reply.status, 'GENERATED_CONTENT');
    assert.equal(reply.contentRef.id, events[0].detail.id, 'the event names the drafted Flow');
    assert.deepEqual(pageErrors, []);
  });

  test('votes show as pressed buttons; after a down vote the visitor opens a ticket, listed for the team and emailed with Reply-To the visitor', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    const question = 'Where do I invite a teammate from?';
    await ask(w, question);
    await w.guide(INVITE).waitFor();
    const helpful = w.helpful.last();
    const notHelpful = w.notHelpful.last();
    assert.equal(await isPressed(helpful), 'false');
    assert.equal(await isPressed(notHelpful), 'false');
    assert.equal(await w.openTicket.count(), 0, 'no ticket offered before a down vote');
    await helpful.click();
    await eventually('Helpful pressed', async () => (await isPressed(helpful)) === 'true', 5000);
    assert.equal(await isPressed(notHelpful), 'false');
    assert.equal(await w.openTicket.count(), 0, 'no ticket offered after an up vote');
    let detail = await conversationWith('main', question);
    assert.equal(detail.messages.find((m) => m.role === 'ASSISTANT').feedback, 'UP');
    await shot(page, '07-voted-helpful');

    await notHelpful.click();
    await eventually('Not helpful pressed', async () => (await isPressed(notHelpful)) === 'true', 5000);
    assert.equal(await isPressed(helpful), 'false');
    detail = await conversationWith('main', question);
    assert.equal(detail.messages.find((m) => m.role === 'ASSISTANT').feedback, 'DOWN');
    await w.openTicket.waitFor();
    await shot(page, '08-voted-not-helpful');

    await w.openTicket.click();
    const form = page.getByRole('form', { name: 'Support ticket', exact: true });
    await form.waitFor();
    const email = form.getByRole('textbox', { name: 'Email', exact: true });
    assert.equal(await email.inputValue(), '', 'an anonymous visitor has no email to prefill');
    // Sent empty: the API's 422 is shown in words naming the fields, and the form stays.
    await form.getByRole('button', { name: 'Send ticket', exact: true }).click();
    const refused = await w.alerts.filter({ hasText: 'Subject' }).first();
    await refused.waitFor();
    assert.match(await refused.innerText(), /Message/);
    assert.equal(await form.count(), 1, 'the form stays open');
    await shot(page, '09-ticket-form-refused');
    await email.fill('grace@example.org');
    await form.getByRole('textbox', { name: 'Subject', exact: true }).fill('Cannot invite');
    await form.getByRole('textbox', { name: 'Message', exact: true }).fill('The invite button is greyed out for me.');
    await shot(page, '10-ticket-form-filled');
    await form.getByRole('button', { name: 'Send ticket', exact: true }).click();
    await w.dialog.getByText('Ticket sent').waitFor();
    await shot(page, '11-ticket-sent');

    const { items } = await owner('GET', `/sites/${seeded.sites.main.id}/tickets`);
    const ticket = items.find((i) => i.sessionId === detail.session.id);
    assert.ok(ticket, 'the ticket is in the Tickets tab');
    assert.equal(ticket.email, 'grace@example.org');
    assert.equal(ticket.subject, 'Cannot invite');
    assert.equal(ticket.body, 'The invite button is greyed out for me.');
    assert.equal(ticket.status, 'OPEN');
    assert.equal(ticket.delivery.recipient, SUPPORT_EMAIL);

    const mail = await eventually('the ticket email at the SMTP server', () => smtp.messages.find((m) => m.text.includes(ticket.id)), 15000);
    assert.deepEqual(mail.to, [SUPPORT_EMAIL]);
    assert.match(mail.headers['reply-to'], /grace@example\.org/);
    assert.match(mail.headers.subject, /Acme/);
    assert.ok(mail.text.includes('greyed out'), 'the message is in the email');
    const sent = await eventually('delivery SENT', async () => {
      const t2 = await owner('GET', `/sites/${seeded.sites.main.id}/tickets/${ticket.id}`);
      return t2.delivery.status === 'SENT' && t2;
    }, 10000);
    assert.equal(sent.delivery.attempts, 1);
    assert.deepEqual(pageErrors, []);
  });

  test('identify with a valid userHash: the session is the signed-in visitor\'s and the ticket form has their email', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main&identify=good');
    const w = widget(page);
    await openChat(w);
    const question = 'How can I invite a teammate as an admin?';
    await ask(w, question);
    await w.guide(INVITE).waitFor();
    const detail = await conversationWith('main', question);
    assert.equal(detail.endUser.externalId, VISITOR.externalId);
    assert.equal(detail.endUser.traits.email, VISITOR.email);
    assert.equal(detail.endUser.traits.plan, VISITOR.plan);
    await w.notHelpful.last().click();
    await w.openTicket.click();
    const form = page.getByRole('form', { name: 'Support ticket', exact: true });
    await form.waitFor();
    assert.equal(await form.getByRole('textbox', { name: 'Email', exact: true }).inputValue(), VISITOR.email);
    await shot(page, '12-identified-ticket-form');
    await form.getByRole('button', { name: 'Cancel', exact: true }).click();
    await form.waitFor({ state: 'hidden' });
    assert.deepEqual(pageErrors, []);
  });

  test('identify after the visitor has asked: the next question is asked as the signed-in visitor', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    const anonymousQuestion = 'Where do I find my billing history, anonymously?';
    await ask(w, anonymousQuestion);
    await w.guide(BILLING_TIP).waitFor();
    await page.evaluate(([externalId, traits, hash]) => window.chatdesk('identify', { externalId, traits, userHash: hash }), [
      VISITOR.externalId, { email: VISITOR.email, plan: VISITOR.plan }, userHash(seeded.identitySecret),
    ]);
    const signedInQuestion = 'And how do I invite a teammate, now signed in?';
    await ask(w, signedInQuestion);
    await w.guide(INVITE).last().waitFor();
    // The team sees the visitor as signed in (the identity card is the end user's, so the
    // earlier conversation of the same browser shows it too).
    const signedIn = await conversationWith('main', signedInQuestion);
    assert.equal(signedIn.endUser.externalId, VISITOR.externalId);
    assert.equal(signedIn.endUser.traits.email, VISITOR.email);
    assert.equal(await w.alerts.filter({ hasText: /\S/ }).count(), 0, 'no error shown');
    assert.deepEqual(pageErrors, []);
  });

  test('the conversation and its votes are still there after the page reloads', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    const question = 'Before I reload: how do I invite a teammate?';
    await ask(w, question);
    await w.helpful.last().click();
    await eventually('Helpful pressed', async () => (await isPressed(w.helpful.last())) === 'true', 5000);
    await page.reload();
    await openChat(w);
    await w.userBubbles.filter({ hasText: question }).waitFor();
    await w.guide(INVITE).waitFor();
    assert.equal(await isPressed(w.helpful.last()), 'true');
    assert.equal(await isPressed(w.notHelpful.last()), 'false');
    assert.equal(await w.userBubbles.count(), 1, 'each message shown once');
    await shot(page, '13-after-reload');
    assert.deepEqual(pageErrors, []);
  });

  test('identify with a wrong userHash: the widget says something went wrong, in words, and keeps working', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main&identify=bad');
    const w = widget(page);
    await openChat(w);
    const alert = w.alerts.filter({ hasText: /Something went wrong/i });
    // The session may be refused when the panel opens or at the first question.
    const refusedOnOpen = await alert.first().waitFor({ timeout: 3000 }).then(() => true, () => false);
    if (!refusedOnOpen) {
      await w.input.fill('How do I invite a teammate?');
      await w.send.click();
      await alert.first().waitFor();
    }
    await shot(page, '14-identify-refused');
    assert.equal(await w.answers.filter({ hasText: INVITE }).count(), 0, 'no answer for a visitor who is not verified');
    await w.close.click();
    await w.dialog.waitFor({ state: 'hidden' });
    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await hostLog(page, 'error'), []);
    assert.deepEqual(await hostLog(page, 'rejection'), []);
  });

  test('past the widget\'s question limit the visitor reads the rate-limit message', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'limited.localhost', 'site=limited');
    const w = widget(page);
    // This widget is configured TOP_LEFT.
    await w.launcher.waitFor();
    const box = await w.launcher.boundingBox();
    assert.ok(box.x + box.width < 1100 / 2 && box.y + box.height < 760 / 2, `launcher at ${JSON.stringify(box)}`);
    await openChat(w);
    await ask(w, 'How do I invite a teammate?');
    await w.guide(INVITE).waitFor();
    await w.input.fill('And where is my billing history?');
    await w.send.click();
    await w.alerts.filter({ hasText: /question limit/i }).first().waitFor();
    assert.equal(await w.guide(BILLING_TIP).count(), 0, 'the second question got no answer');
    await shot(page, '15-rate-limited');
    assert.deepEqual(pageErrors, []);
  });

  test('a tenant out of credits: the visitor reads the widget\'s out-of-credits message', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'beta.localhost', 'site=broke');
    const w = widget(page);
    await openChat(w);
    const generations = model.requests.length;
    await w.input.fill('Can I pay by bank transfer?');
    await w.send.click();
    await w.alerts.filter({ hasText: OUT_OF_CREDITS }).first().waitFor();
    assert.equal(model.requests.length, generations, 'no model call without credits');
    await shot(page, '16-out-of-credits');
    assert.deepEqual(pageErrors, []);
  });

  test('an unreachable API (data-api where nothing listens) adds nothing to the page and throws nothing', { timeout: TEST_TIMEOUT }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(ACTION_TIMEOUT);
    t.after(() => context.close());
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const configCall = page.waitForEvent('requestfailed', { predicate: (r) => r.url().includes('/api/v1/sdk/chat/config') });
    await page.goto(`http://localhost:${pages.port}/page?site=main&api=dead`);
    await configCall;
    await page.waitForTimeout(500);
    assert.equal(await page.locator('#chatdesk-widget').count(), 0, 'no #chatdesk-widget element');
    assert.equal(await page.locator('body > *').count(), 2, 'the body holds only the page\'s own header and main');
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await hostLog(page, 'error'), []);
    assert.deepEqual(await hostLog(page, 'rejection'), []);
  });

  test('a question lost on the network: "Something went wrong", and the next one is answered', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    await ask(w, 'Where is my billing history?');
    await w.guide(BILLING_TIP).waitFor();
    const messages = '**/api/v1/sdk/chat/sessions/*/messages';
    await page.route(messages, (route) => route.abort('connectionreset'));
    await w.input.fill('How do I invite a teammate?');
    await w.send.click();
    const wrong = w.alerts.filter({ hasText: /Something went wrong/i }).first();
    await wrong.waitFor();
    await shot(page, '17-network-error');
    await page.unroute(messages);
    await ask(w, 'So how do I invite a teammate?');
    await w.guide(INVITE).waitFor();
    await wrong.waitFor({ state: 'hidden' });
    assert.deepEqual(pageErrors, []);
  });

  test('markup in a model\'s answer and a guide\'s name shows as text and runs nothing', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await openChat(w);
    const answer = await ask(w, 'How do I use markup in the editor?', 'in the editor, then press Save');
    assert.ok((await answer.innerText()).includes('<img src=x onerror="window.cdInjected=1">'), await answer.innerText());
    await w.guide(GENERATED_MARKUP.name).waitFor();
    assert.equal(await answer.locator('img, b').count(), 0, 'no element made from the answer');
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.cdInjected), undefined);
    await shot(page, '18-markup-as-text');
    assert.deepEqual(pageErrors, []);
  });

  test('under a strict CSP (no unsafe-inline, no unsafe-eval, style-src \'none\') the widget works end to end with no violation', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors, consoleErrors } = await visit(t, 'localhost', 'site=main&csp=1');
    const w = widget(page);
    await openChat(w);
    await w.dialog.getByText('Hi! Ask me anything about Acme.').waitFor();
    const question = 'Please show me how to invite a teammate';
    await ask(w, question);
    await w.guide(INVITE).click();
    await eventually('the content event', async () => (await hostLog(page, 'content')).length === 1, 5000);
    await w.notHelpful.last().click();
    await w.openTicket.waitFor();
    // The widget's own styles apply under the policy: its launcher is placed, not left in the flow.
    const position = await w.launcher.evaluate((el) => getComputedStyle(el).position);
    assert.notEqual(position, 'static', 'the widget\'s styles apply under the CSP');
    await shot(page, '19-strict-csp');
    assert.deepEqual(await hostLog(page, 'csp'), [], 'securitypolicyviolation events');
    assert.deepEqual(consoleErrors, [], 'console errors');
    assert.deepEqual(pageErrors, []);
  });

  test('the host page keeps its own globals: the widget adds only window.chatdesk, which opens and closes it', { timeout: TEST_TIMEOUT }, async (t) => {
    const globals = async (query, wait) => {
      const { page, pageErrors } = await visit(t, 'localhost', query);
      await wait(page);
      assert.deepEqual(pageErrors, []);
      return {
        page,
        names: await page.evaluate(() => Object.getOwnPropertyNames(window)),
      };
    };
    const bare = await globals('site=main&stub=0&snippet=0', (page) => page.getByRole('heading', { name: 'Acme app' }).waitFor());
    const withWidget = await globals('site=main&stub=0', async (page) => {
      await page.getByRole('heading', { name: 'Acme app' }).waitFor();
      await widget(page).launcher.waitFor();
    });
    const added = withWidget.names.filter((n) => !bare.names.includes(n));
    const removed = bare.names.filter((n) => !withWidget.names.includes(n));
    assert.deepEqual(added, ['chatdesk']);
    assert.deepEqual(removed, []);
    const page = withWidget.page;
    // The page drives the widget through its one global.
    const w = widget(page);
    await page.evaluate(() => window.chatdesk('open'));
    await w.dialog.waitFor({ state: 'visible' });
    await page.evaluate(() => window.chatdesk('close'));
    await w.dialog.waitFor({ state: 'hidden' });
    await openChat(w);
    const untouched = await page.evaluate(() => ({
      appState: window.appState,
      fetch: window.fetch === window.hostFetch,
      chatdesk: typeof window.chatdesk,
      objectProto: Object.getOwnPropertyNames(Object.prototype).length,
      bodyChildren: [...document.body.children].map((e) => e.tagName + (e.id ? `#${e.id}` : '')),
    }));
    assert.deepEqual(untouched.appState, { user: 'ada', cart: [1, 2, 3] });
    assert.equal(untouched.fetch, true, 'window.fetch is the page\'s own');
    assert.equal(untouched.chatdesk, 'function');
    const baseline = await bare.page.evaluate(() => Object.getOwnPropertyNames(Object.prototype).length);
    assert.equal(untouched.objectProto, baseline, 'Object.prototype untouched');
    assert.deepEqual(untouched.bodyChildren, ['HEADER', 'MAIN', 'DIV#chatdesk-widget']);
  });

  test('keyboard: Tab reaches the launcher, Enter opens with focus in the input, Escape closes', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    const w = widget(page);
    await w.launcher.waitFor();
    const focused = (locator) => locator.evaluate((el) => el.getRootNode().activeElement === el
      && (el.getRootNode() === document || document.activeElement === el.getRootNode().host));
    let reached = false;
    for (let i = 0; i < 5 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = await focused(w.launcher);
    }
    assert.ok(reached, 'Tab reaches the launcher');
    const outline = await w.launcher.evaluate((el) => getComputedStyle(el).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused launcher shows a focus ring');
    await shot(page, '20-keyboard-launcher-focused');
    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true');
    await eventually('focus in the question box', () => focused(w.input), 3000);
    await page.keyboard.type('How do I invite a teammate?');
    await page.keyboard.press('Enter');
    await w.guide(INVITE).waitFor();
    await shot(page, '21-keyboard-asked');
    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'hidden' });
    assert.equal(await w.launcher.getAttribute('aria-expanded'), 'false');
    await eventually('focus back on the launcher', () => focused(w.launcher), 3000);
    assert.deepEqual(pageErrors, []);
  });

  test('on a phone-sized screen the open panel fits in the viewport', { timeout: TEST_TIMEOUT }, async (t) => {
    const { page, pageErrors } = await visit(t, 'localhost', 'site=main');
    await page.setViewportSize({ width: 375, height: 667 });
    const w = widget(page);
    await openChat(w);
    await ask(w, 'How do I invite a teammate from my phone?');
    await w.guide(INVITE).waitFor();
    for (const [what, locator] of [['panel', w.dialog], ['question box', w.input], ['Send', w.send], ['guide button', w.guide(INVITE)]]) {
      const box = await locator.boundingBox();
      assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= 375 && box.y + box.height <= 667, `${what} at ${JSON.stringify(box)}`);
    }
    await shot(page, '22-phone');
    assert.deepEqual(pageErrors, []);
  });
});
