// A sample of the dashboard SPA's and the widget's calls, written against the client that
// openapi-typescript generates from chatdesk's OpenAPI document
// (schema.d.ts, made by run.sh). It is type-checked, never run: if the
// document gives an operation the wrong types, repeats an operationId or
// loses a field the SPA reads, `tsc --strict` fails.

import createClient from "openapi-fetch";

import type { components, operations, paths } from "./schema";

type Problem = components["schemas"]["Problem"];
type Site = components["schemas"]["SiteView"];
type Position = components["schemas"]["WidgetPositionSchema"];

const client = createClient<paths>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { Authorization: "Bearer cd_pat_example" },
});

/** The stable code of a problem+json answer, as the SPA branches on it. */
function problemCode(problem: Problem): string {
  return problem.code;
}

/** listSites: a page of sites, by domain. */
export async function siteDomains(cursor?: string): Promise<{ domains: string[]; next: string | null }> {
  const query: operations["listSites"]["parameters"]["query"] =
    cursor === undefined ? { limit: 25 } : { limit: 25, cursor };
  const { data, error } = await client.GET("/api/v1/sites", { params: { query } });
  if (error) {
    throw new Error(problemCode(error));
  }
  const sites: Site[] = data.items;
  return { domains: sites.map((site) => site.domain), next: data.nextCursor ?? null };
}

/** listMembers answers members, which have no domain. */
export async function memberEmails(): Promise<string[]> {
  const { data, error } = await client.GET("/api/v1/members", {});
  if (error) {
    throw new Error(problemCode(error));
  }
  const first = data.items[0];
  if (first) {
    // @ts-expect-error a member is not a site
    void first.domain;
  }
  return data.items.map((member) => member.email);
}

/** createSite: the new site and its API key, or the plan's cap. */
export async function addSite(domain: string): Promise<{ id: string; apiKey: string } | "PLAN_LIMIT"> {
  const { data, error, response } = await client.POST("/api/v1/sites", {
    body: { domain, name: "Docs", allowSubdomains: false },
  });
  if (error) {
    if (response.status === 409 && problemCode(error) === "PLAN_LIMIT") {
      return "PLAN_LIMIT";
    }
    throw new Error(`${error.status} ${error.code}: ${error.detail}`);
  }
  return { id: data.site.id, apiKey: data.apiKey };
}

/** getWidget: the widget's position, or null when the site has none yet. */
export async function widgetPosition(siteId: string): Promise<Position | null> {
  const { data, error, response } = await client.GET("/api/v1/sites/{siteId}/widget", {
    params: { path: { siteId } },
  });
  if (error) {
    if (response.status === 404) {
      return null;
    }
    throw new Error(problemCode(error));
  }
  const position: "BOTTOM_RIGHT" | "BOTTOM_LEFT" | "TOP_RIGHT" | "TOP_LEFT" = data.position;
  return position;
}

/** updateContent: publish an item, returning the audiences it now targets. */
export async function publish(siteId: string, contentId: string): Promise<string[]> {
  const { data, error } = await client.PATCH("/api/v1/sites/{siteId}/content/{contentId}", {
    params: { path: { siteId, contentId } },
    body: { status: "PUBLISHED" },
  });
  if (error) {
    const fields = (error.errors ?? []).map((field) => `${field.field}: ${field.message}`);
    throw new Error([problemCode(error), ...fields].join("\n"));
  }
  const status: "DRAFT" | "PUBLISHED" = data.status;
  void status;
  return data.audiences;
}

// The widget SDK, as the embedded widget calls it with the site's key.
const widget = createClient<paths>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { "X-Chatdesk-Site-Key": "cd_live_example" },
});

/** getChatConfig: the welcome message when the chat may open, else the gate's reason. */
export async function chatOpens(): Promise<{ welcome: string } | { closed: string }> {
  const { data, error } = await widget.GET("/api/v1/sdk/chat/config", {});
  if (error) {
    throw new Error(problemCode(error));
  }
  if (data.enabled && data.widget) {
    return { welcome: data.widget.welcomeMessage };
  }
  const reason:
    | "SITE_NOT_MAPPED"
    | "FEATURE_LOCKED"
    | "WIDGET_DISABLED"
    | "WIDGET_PAUSED"
    | "WIDGET_NOT_PUBLISHED"
    | null
    | undefined = data.reason;
  return { closed: reason ?? "UNKNOWN" };
}

/** openChatSession then askChatQuestion: the reply's text and the guide it points at. */
export async function askOnce(
  anonymousId: string,
  question: string,
): Promise<{ text: string; guide: string | null; retryAfter: string | null }> {
  const opened = await widget.POST("/api/v1/sdk/chat/sessions", { body: { anonymousId } });
  if (opened.error) {
    throw new Error(problemCode(opened.error));
  }
  const { sessionId, sessionToken } = opened.data;
  const { data, error, response } = await widget.POST("/api/v1/sdk/chat/sessions/{sessionId}/messages", {
    params: { path: { sessionId }, header: { "X-Chatdesk-Session": sessionToken } },
    body: { content: question },
  });
  if (error) {
    if (response.status === 429 && problemCode(error) === "RATE_LIMITED") {
      return { text: error.detail, guide: null, retryAfter: response.headers.get("Retry-After") };
    }
    throw new Error(problemCode(error));
  }
  const reply = data.assistantMessage;
  const vote = await widget.PUT("/api/v1/sdk/chat/messages/{messageId}/feedback", {
    params: { path: { messageId: reply.id }, header: { "X-Chatdesk-Session": sessionToken } },
    body: { vote: "DOWN" },
  });
  if (vote.data && vote.data.followUp.includes("OPEN_TICKET")) {
    void vote.data.vote;
  }
  return { text: reply.content, guide: reply.contentRef?.name ?? null, retryAfter: null };
}

type ConversationItem = components["schemas"]["ConversationItem"];
type FeedbackKind = components["schemas"]["FeedbackKindSchema"];

/** listConversations: the Conversations tab, with its filters, newest activity first. */
export async function downvotedConversations(
  siteId: string,
  from: string,
  cursor?: string,
): Promise<{ previews: string[]; escalated: number; next: string | null }> {
  const feedback: FeedbackKind = "DOWN_ONLY";
  const query: operations["listConversations"]["parameters"]["query"] = {
    from,
    feedback,
    hasFeedback: true,
    escalated: false,
    limit: 50,
    ...(cursor === undefined ? {} : { cursor }),
  };
  const { data, error, response } = await client.GET("/api/v1/sites/{siteId}/conversations", {
    params: { path: { siteId }, query },
  });
  if (error) {
    // A `from` that is not a date-time: 400 naming the parameter.
    if (response.status === 400) {
      throw new Error(`bad ${error.errors?.map((e) => e.field).join(", ")}`);
    }
    throw new Error(problemCode(error));
  }
  const items: ConversationItem[] = data.items;
  return {
    previews: items.map((s) => s.preview ?? `(${s.messageCount} messages)`),
    escalated: items.filter((s) => s.escalated && s.ticketId !== null).length,
    next: data.nextCursor ?? null,
  };
}

/** getConversation: the timeline with its guides and votes, the identity card, the ticket link. */
export async function conversationTimeline(
  siteId: string,
  sessionId: string,
): Promise<{ lines: string[]; visitor: string; ticket: string | null }> {
  const { data, error } = await client.GET("/api/v1/sites/{siteId}/conversations/{sessionId}", {
    params: { path: { siteId, sessionId } },
  });
  if (error) {
    throw new Error(problemCode(error));
  }
  const lines = data.messages.map((m) => {
    const guide = m.contentRef ? ` → ${m.contentRef.kind} ${m.contentRef.name}` : "";
    const vote = m.feedback === null || m.feedback === undefined ? "" : ` [${m.feedback}]`;
    return `${m.createdAt} ${m.role} ${m.status}: ${m.content}${guide}${vote} (${m.model ?? "no model"}, ${m.tokensUsed ?? 0} tokens)`;
  });
  const card = data.endUser;
  const visitor = `${card.externalId ?? card.anonymousId} since ${card.firstSeenAt}, seen ${card.lastSeenAt}, ${Object.keys(card.traits).length} traits`;
  const ticket = data.ticket ? `${data.ticket.id} (${data.ticket.status})` : null;
  return { lines, visitor: `${visitor}; ended ${data.session.endedAt ?? "not yet"}`, ticket };
}

/** exportConversation: the same document, as a download. */
export async function exportConversation(siteId: string, sessionId: string): Promise<Blob> {
  const { data, error } = await client.GET("/api/v1/sites/{siteId}/conversations/{sessionId}/export", {
    params: { path: { siteId, sessionId } },
    parseAs: "blob",
  });
  if (error) {
    throw new Error(problemCode(error));
  }
  return data;
}
