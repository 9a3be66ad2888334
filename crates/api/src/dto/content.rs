//! The content library's shapes.

use super::*;

/// A Flow or Tooltip.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContentView {
    /// Item id.
    pub id: Uuid,
    /// Its site.
    pub site_id: Uuid,
    /// FLOW or TOOLTIP.
    #[schema(value_type = ContentKindSchema)]
    pub kind: ContentKind,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// DRAFT or PUBLISHED.
    #[schema(value_type = ContentStatusSchema)]
    pub status: ContentStatus,
    /// Audiences; "No users" holds an AI-made Flow back from everyone.
    pub audiences: Vec<String>,
    /// Whether chatdesk's answer generator made it.
    pub generated: bool,
    /// For an AI-made Flow: the conversation it was made in and the answer
    /// it holds (null otherwise).
    pub origin: Option<GeneratedOriginView>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where an AI-made Flow came from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedOriginView {
    /// The session whose question it answers; while the Flow is held back
    /// under "No users", that visitor is the one it is shown to.
    pub session_id: Uuid,
    /// The assistant message that points at it.
    pub message_id: Uuid,
    /// The model's answer: the Flow's content.
    pub answer: String,
}

impl From<&ContentItem> for ContentView {
    fn from(c: &ContentItem) -> Self {
        ContentView {
            id: c.id.as_uuid(),
            site_id: c.site_id.as_uuid(),
            kind: c.kind,
            name: c.name.clone(),
            description: c.description.clone(),
            status: c.status,
            audiences: c.audiences.iter().map(ToString::to_string).collect(),
            generated: c.generated,
            origin: c.origin.as_ref().map(|o| GeneratedOriginView {
                session_id: o.session_id.as_uuid(),
                message_id: o.message_id.as_uuid(),
                answer: o.answer.clone(),
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// `POST /sites/{siteId}/content` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateContent {
    /// FLOW or TOOLTIP.
    #[schema(value_type = ContentKindSchema)]
    pub kind: String,
    /// Name, 1–120 characters on one line, not blank (no control,
    /// line-breaking or invisible formatting characters).
    #[schema(min_length = 1, max_length = 120)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*[^\s\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB][^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*$"
    )]
    pub name: String,
    /// Description, ≤ 2000 characters (no control characters but tabs and
    /// line breaks).
    #[schema(max_length = 2000)]
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub description: Option<String>,
    /// DRAFT (default) or PUBLISHED.
    #[schema(value_type = Option<ContentStatusSchema>)]
    pub status: Option<String>,
    /// Audience names (1–50 characters each, at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub audiences: Vec<String>,
}

/// `PATCH /sites/{siteId}/content/{contentId}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchContent {
    /// New status.
    #[schema(value_type = Option<ContentStatusSchema>)]
    pub status: Option<String>,
    /// New audiences (replaces the list; leave out "No users" to re-target
    /// an AI-made Flow to everyone).
    #[schema(max_items = 20)]
    pub audiences: Option<Vec<String>>,
}

macro_rules! list_type {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// This page's items.
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; null on the last page.
            pub next_cursor: Option<String>,
        }
    };
}

list_type!(MemberList, MemberView, "A page of members.");
list_type!(SiteList, SiteView, "A page of sites.");
list_type!(ContentList, ContentView, "A page of content items.");
