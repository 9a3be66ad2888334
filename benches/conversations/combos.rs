//! The filter combinations measured, each as the HTTP query a dashboard
//! sends and as the store's own statement (`conversation_list_sql`) with
//! the values the store binds (`ListBounds`), run on a plain connection.

use std::time::Duration;

use chatdesk_domain::conversation::{
    ConversationCursor, ConversationFilter, ConversationQuery, DateWindow, FeedbackKind,
};
use chatdesk_domain::ids::{SessionId, SiteId};
use chatdesk_store::{conversation_list_index, conversation_list_sql, Backend, ListBounds};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};

use crate::Result;

/// The page size the dashboard asks for.
pub(crate) const PAGE: u32 = 25;

/// One filter combination.
pub(crate) struct Combo {
    /// The query string's filters (`-` for none).
    pub(crate) label: String,
    pub(crate) query: ConversationQuery,
    /// The HTTP query parameters of the filters.
    params: Vec<(&'static str, String)>,
    /// The store's statement for it.
    pub(crate) sql: String,
    /// The index made for it.
    pub(crate) index: &'static str,
}

/// The combinations: no filter; each filter alone; each feedback kind
/// with each escalation; a 7-day window alone and with other filters.
pub(crate) fn all(window: DateWindow) -> Vec<Combo> {
    use FeedbackKind::*;
    let none = ConversationFilter::default();
    let mut filters: Vec<ConversationFilter> = vec![none.clone()];
    for escalated in [true, false] {
        filters.push(ConversationFilter {
            escalated: Some(escalated),
            ..none.clone()
        });
    }
    for has in [true, false] {
        filters.push(ConversationFilter {
            has_feedback: Some(has),
            ..none.clone()
        });
    }
    for kind in [UpOnly, DownOnly, Either, Neither] {
        filters.push(ConversationFilter {
            feedback: Some(kind),
            ..none.clone()
        });
    }
    for kind in [UpOnly, DownOnly, Either, Neither] {
        for escalated in [true, false] {
            filters.push(ConversationFilter {
                feedback: Some(kind),
                escalated: Some(escalated),
                ..none.clone()
            });
        }
    }
    filters.push(ConversationFilter {
        has_feedback: Some(true),
        feedback: Some(UpOnly),
        ..none.clone()
    });
    let windowed = ConversationFilter {
        window,
        ..none.clone()
    };
    filters.push(windowed.clone());
    filters.push(ConversationFilter {
        escalated: Some(true),
        ..windowed.clone()
    });
    filters.push(ConversationFilter {
        feedback: Some(DownOnly),
        ..windowed.clone()
    });
    filters.push(ConversationFilter {
        has_feedback: Some(true),
        escalated: Some(false),
        ..windowed
    });
    filters
        .into_iter()
        .filter_map(|filter| {
            let query = filter.query()?;
            let params = params_of(&filter);
            let label = if params.is_empty() {
                "-".to_string()
            } else {
                params
                    .iter()
                    .map(|(name, value)| {
                        if matches!(*name, "from" | "to") {
                            format!("{name}=…")
                        } else {
                            format!("{name}={value}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            };
            Some(Combo {
                label,
                query,
                params,
                sql: conversation_list_sql(Backend::Postgres, query.votes, query.escalated),
                index: conversation_list_index(query.votes, query.escalated),
            })
        })
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn params_of(filter: &ConversationFilter) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(from) = filter.window.from {
        params.push(("from", rfc3339(from)));
    }
    if let Some(to) = filter.window.to {
        params.push(("to", rfc3339(to)));
    }
    if let Some(has) = filter.has_feedback {
        params.push(("hasFeedback", has.to_string()));
    }
    if let Some(kind) = filter.feedback {
        params.push(("feedback", kind.as_str().to_string()));
    }
    if let Some(escalated) = filter.escalated {
        params.push(("escalated", escalated.to_string()));
    }
    params
}

/// A page row as the store's statement returns it.
#[derive(QueryableByName, Debug)]
#[allow(dead_code)] // read from the wire like the store does; only id and last_active_at are used
pub(crate) struct Row {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
    #[diesel(sql_type = Text)]
    site_id: String,
    #[diesel(sql_type = Text)]
    widget_id: String,
    #[diesel(sql_type = Text)]
    end_user_id: String,
    #[diesel(sql_type = Timestamp)]
    started_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub(crate) last_active_at: NaiveDateTime,
    #[diesel(sql_type = Nullable<Timestamp>)]
    ended_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Integer)]
    message_count: i32,
    #[diesel(sql_type = Integer)]
    question_count: i32,
    #[diesel(sql_type = Integer)]
    up_votes: i32,
    #[diesel(sql_type = Integer)]
    down_votes: i32,
    #[diesel(sql_type = Nullable<Text>)]
    ticket_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    preview: Option<String>,
    #[diesel(sql_type = Text)]
    anonymous_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    external_id: Option<String>,
}

impl Row {
    pub(crate) fn cursor(&self) -> Result<ConversationCursor> {
        Ok(ConversationCursor {
            last_active_at: self.last_active_at.and_utc(),
            id: self
                .id
                .parse::<SessionId>()
                .map_err(|_| format!("{} is not a session id", self.id))?,
        })
    }
}

/// Binds `bounds` to `sql` (the parameters of `conversation_list_sql`).
fn bound<'a>(
    sql: String,
    b: &'a ListBounds,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<Text, _>(&b.site)
        .bind::<Timestamp, _>(b.from)
        .bind::<Timestamp, _>(b.to)
        .bind::<Timestamp, _>(b.latest_activity)
        .bind::<Timestamp, _>(b.cursor_at)
        .bind::<Timestamp, _>(b.cursor_at)
        .bind::<Text, _>(&b.cursor_id)
        .bind::<BigInt, _>(b.limit)
}

impl Combo {
    /// The values the store binds for a page after `after`.
    pub(crate) fn bounds(
        &self,
        site: SiteId,
        after: Option<&ConversationCursor>,
        rows: i64,
    ) -> ListBounds {
        ListBounds::new(site, &self.query, after, rows)
    }

    /// The store's statement, run as the store runs it (diesel's
    /// `sql_query`, prepared unnamed on each call) on `conn`.
    pub(crate) fn page(&self, conn: &mut PgConnection, bounds: &ListBounds) -> Result<Vec<Row>> {
        Ok(bound(self.sql.clone(), bounds).load(conn)?)
    }

    /// The sessions the combination matches.
    pub(crate) fn count(&self, conn: &mut PgConnection, site: SiteId) -> Result<i64> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let bounds = self.bounds(site, None, i64::MAX);
        let sql = format!("SELECT count(*) AS n FROM ({}) AS page", self.sql);
        let n: N = bound(sql, &bounds).get_result(conn)?;
        Ok(n.n)
    }

    /// The `n`th row of the list (1-based): a deep page continues after it.
    pub(crate) fn nth(&self, conn: &mut PgConnection, site: SiteId, n: i64) -> Result<Row> {
        let bounds = self.bounds(site, None, n);
        let sql = format!(
            "SELECT * FROM ({}) AS page ORDER BY page.last_active_at, page.id LIMIT 1",
            self.sql
        );
        Ok(bound(sql, &bounds).get_result(conn)?)
    }

    /// `EXPLAIN (ANALYZE, BUFFERS, …)` of the statement with `bounds`.
    pub(crate) fn explain(
        &self,
        conn: &mut PgConnection,
        bounds: &ListBounds,
        format: &str,
    ) -> Result<Vec<String>> {
        #[derive(QueryableByName)]
        struct Line {
            #[diesel(sql_type = Text)]
            #[diesel(column_name = "QUERY PLAN")]
            line: String,
        }
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS, {format}) {}", self.sql);
        let lines: Vec<Line> = bound(sql, bounds).load(conn)?;
        Ok(lines.into_iter().map(|l| l.line).collect())
    }

    /// The dashboard's URL of a page of the list.
    pub(crate) fn url(&self, base: &str, site: &str, cursor: Option<&str>) -> String {
        let mut url = format!("{base}/api/v1/sites/{site}/conversations?limit={PAGE}");
        for (name, value) in &self.params {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(value);
        }
        if let Some(cursor) = cursor {
            url.push_str("&cursor=");
            url.push_str(cursor);
        }
        url
    }
}

/// A dashboard client: one keep-alive connection, a member's token.
pub(crate) struct Client {
    agent: ureq::Agent,
    auth: String,
}

/// What a list page said.
pub(crate) struct Listed {
    pub(crate) ids: Vec<String>,
    pub(crate) next: Option<String>,
}

impl Client {
    pub(crate) fn new(token: &str) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .max_idle_connections(4)
                .build(),
            auth: format!("Bearer {token}"),
        }
    }

    /// GETs `url` and returns the body; anything but 200 is an error.
    pub(crate) fn get(&self, url: &str) -> Result<String> {
        match self.agent.get(url).set("Authorization", &self.auth).call() {
            Ok(reply) => Ok(reply.into_string()?),
            Err(ureq::Error::Status(status, reply)) => {
                let body = reply.into_string().unwrap_or_default();
                Err(format!("GET {url}: {status} {body}").into())
            }
            Err(e) => Err(format!("GET {url}: {e}").into()),
        }
    }

    /// GETs `url`, returning the response for the caller to read.
    pub(crate) fn call(&self, url: &str) -> Result<ureq::Response> {
        match self.agent.get(url).set("Authorization", &self.auth).call() {
            Ok(reply) => Ok(reply),
            Err(ureq::Error::Status(status, reply)) => {
                let body = reply.into_string().unwrap_or_default();
                Err(format!("GET {url}: {status} {body}").into())
            }
            Err(e) => Err(format!("GET {url}: {e}").into()),
        }
    }

    /// A list page's ids and next cursor.
    pub(crate) fn list(&self, url: &str) -> Result<Listed> {
        let body: serde_json::Value = serde_json::from_str(&self.get(url)?)?;
        let ids = body["items"]
            .as_array()
            .ok_or_else(|| format!("GET {url}: no items in {body}"))?
            .iter()
            .map(|item| item["id"].as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("GET {url}: an item without an id"))?;
        Ok(Listed {
            ids,
            next: body["nextCursor"].as_str().map(str::to_string),
        })
    }
}
