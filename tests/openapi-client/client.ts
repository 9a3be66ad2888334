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
