//! The content library: a site's Flows and Tooltips, their status and
//! audiences, and re-targeting of AI-made Flows.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::closed_enum::closed_enum;
use crate::error::{Error, Validator};
use crate::ids::{ContentId, SiteId};

closed_enum!(
    /// A Flow (a multi-step guide) or a Tooltip (one hint).
    ContentKind {
        /// A multi-step guide.
        Flow => "FLOW",
        /// A single hint.
        Tooltip => "TOOLTIP",
    }
);

closed_enum!(
    /// Whether visitors can see a content item.
    ContentStatus {
        /// Not shown.
        Draft => "DRAFT",
        /// Shown to its audiences.
        Published => "PUBLISHED",
    }
);

/// The special audience under which AI-made Flows are published: shown only
/// to the visitor who asked, not to everyone.
pub const NO_USERS: &str = "No users";
/// The most characters an audience name may have.
pub const AUDIENCE_MAX: usize = 50;
/// The most audiences a content item may have.
pub const AUDIENCES_MAX: usize = 20;
/// The most characters a content name may have.
pub const CONTENT_NAME_MAX: usize = 120;
/// The most characters a content description may have.
pub const CONTENT_DESCRIPTION_MAX: usize = 2000;

/// A named audience (segment of visitors): 1–50 characters of single-line
/// text ([`crate::text::single_line`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Audience(String);

impl Audience {
    /// Parses an audience name.
    pub fn parse(raw: &str) -> Result<Audience, String> {
        crate::text::single_line(raw, 1, AUDIENCE_MAX).map(Audience)
    }

    /// The special "No users" audience.
    pub fn no_users() -> Audience {
        Audience(NO_USERS.to_string())
    }

    /// Whether this is the "No users" audience.
    pub fn is_no_users(&self) -> bool {
        self.0 == NO_USERS
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Audience {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Audience::parse(&value)
    }
}

impl From<Audience> for String {
    fn from(value: Audience) -> Self {
        value.0
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a list of audiences: each valid, duplicates dropped (first wins),
/// at most 20.
pub fn parse_audiences(field: &str, raw: &[String], v: &mut Validator) -> Vec<Audience> {
    if raw.len() > AUDIENCES_MAX {
        v.push(
            field,
            format!("must have at most {AUDIENCES_MAX} audiences"),
        );
        return Vec::new();
    }
    let mut out: Vec<Audience> = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        match Audience::parse(name) {
            Ok(a) if !out.contains(&a) => out.push(a),
            Ok(_) => {}
            Err(message) => v.push(&format!("{field}[{i}]"), message),
        }
    }
    out
}

/// A Flow or Tooltip of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentItem {
    /// Its id.
    pub id: ContentId,
    /// Its site.
    pub site_id: SiteId,
    /// Flow or Tooltip.
    pub kind: ContentKind,
    /// Its name; the matcher looks for it verbatim in questions.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Draft or published.
    pub status: ContentStatus,
    /// Who sees it.
    pub audiences: Vec<Audience>,
    /// Whether the answer generator made it.
    pub generated: bool,
    /// For an AI-made Flow: the conversation it was made in and the answer
    /// it holds.
    pub origin: Option<GeneratedFrom>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write.
    pub version: crate::version::Version,
}

/// Where an AI-made Flow came from, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFrom {
    /// The session whose question it answers (the visitor it is shown to
    /// while it is held back under "No users").
    pub session_id: crate::ids::SessionId,
    /// The assistant message that points at it.
    pub message_id: crate::ids::MessageId,
    /// The model's answer: the Flow's content.
    pub answer: String,
}

/// A new content item as a team member sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContentInput {
    /// `FLOW` or `TOOLTIP`.
    pub kind: String,
    /// 1–120 characters.
    pub name: String,
    /// ≤ 2000 characters.
    pub description: Option<String>,
    /// `DRAFT` or `PUBLISHED`; default DRAFT.
    pub status: Option<String>,
    /// Audience names.
    pub audiences: Vec<String>,
}

/// A change to a content item: status and/or audiences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentPatchInput {
    /// New status.
    pub status: Option<String>,
    /// New audiences (replaces the list).
    pub audiences: Option<Vec<String>>,
}

/// A validated change to a content item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentPatch {
    /// New status.
    pub status: Option<ContentStatus>,
    /// New audiences.
    pub audiences: Option<Vec<Audience>>,
}

impl ContentPatchInput {
    /// Validates the change.
    pub fn parse(&self) -> Result<ContentPatch, Error> {
        let mut v = Validator::new();
        let status = match &self.status {
            Some(s) => v.check("status", s.parse::<ContentStatus>()),
            None => None,
        };
        let audiences = self
            .audiences
            .as_ref()
            .map(|a| parse_audiences("audiences", a, &mut v));
        v.finish()?;
        Ok(ContentPatch { status, audiences })
    }
}

impl ContentItem {
    /// Builds a new item from a member's input.
    pub fn create(
        id: ContentId,
        site_id: SiteId,
        input: &NewContentInput,
        now: DateTime<Utc>,
    ) -> Result<ContentItem, Error> {
        let mut v = Validator::new();
        let kind = v.check("kind", input.kind.parse::<ContentKind>());
        let name = v.check(
            "name",
            crate::text::single_line(&input.name, 1, CONTENT_NAME_MAX),
        );
        let description = v.check(
            "description",
            crate::text::bounded(
                input.description.as_deref().unwrap_or(""),
                0,
                CONTENT_DESCRIPTION_MAX,
            ),
        );
        let status = v.check(
            "status",
            input
                .status
                .as_deref()
                .map_or(Ok(ContentStatus::Draft), str::parse),
        );
        let audiences = parse_audiences("audiences", &input.audiences, &mut v);
        v.finish()?;
        match (kind, name, description, status) {
            (Some(kind), Some(name), Some(description), Some(status)) => Ok(ContentItem {
                id,
                site_id,
                kind,
                name,
                description,
                status,
                audiences,
                generated: false,
                origin: None,
                created_at: now,
                updated_at: now,
                version: crate::version::Version::FIRST,
            }),
            _ => Err(Error::Internal("content validation lost an error".into())),
        }
    }

    /// A Flow drafted by the answer generator: published under "No users",
    /// so only the visitor who asked sees it until it is re-targeted.
    pub fn generated_flow(
        id: ContentId,
        site_id: SiteId,
        name: String,
        description: String,
        origin: GeneratedFrom,
        now: DateTime<Utc>,
    ) -> ContentItem {
        ContentItem {
            id,
            site_id,
            kind: ContentKind::Flow,
            name,
            description,
            status: ContentStatus::Published,
            audiences: vec![Audience::no_users()],
            generated: true,
            origin: Some(origin),
            created_at: now,
            updated_at: now,
            version: crate::version::Version::FIRST,
        }
    }

    /// The entity tag of the item's representation.
    pub fn entity_tag(&self) -> String {
        crate::version::entity_tag(&[self.version])
    }

    /// Applies a change, stamped `now` and one version on when anything
    /// changed. Returns whether anything changed. The store calls it on
    /// the row it read in the writing transaction and writes back only the
    /// fields a patch owns (status, audiences).
    pub fn apply(&mut self, patch: &ContentPatch, now: DateTime<Utc>) -> bool {
        let mut changed = false;
        if let Some(status) = patch.status {
            changed |= self.status != status;
            self.status = status;
        }
        if let Some(audiences) = &patch.audiences {
            changed |= self.audiences != *audiences;
            self.audiences = audiences.clone();
        }
        if changed {
            self.updated_at = now;
            self.version = crate::version::Version(self.version.0 + 1);
        }
        changed
    }

    /// Whether the item is held back under "No users".
    pub fn is_targeted_at_no_users(&self) -> bool {
        self.audiences.iter().any(Audience::is_no_users)
    }

    /// Whether every visitor may be shown the item: published and not held
    /// back under "No users". (Re-targeting an AI-made Flow is removing that
    /// audience.)
    pub fn is_shown_to_everyone(&self) -> bool {
        self.status == ContentStatus::Published && !self.is_targeted_at_no_users()
    }
}

/// Filters of the content list; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentFilter {
    /// Only this kind.
    pub kind: Option<ContentKind>,
    /// Only this status.
    pub status: Option<ContentStatus>,
    /// Only items with this audience.
    pub audience: Option<Audience>,
}

impl ContentFilter {
    /// Whether `item` passes the filter (the store translates the same
    /// conditions to SQL; this is their reference).
    pub fn matches(&self, item: &ContentItem) -> bool {
        self.kind.is_none_or(|k| item.kind == k)
            && self.status.is_none_or(|s| item.status == s)
            && self
                .audience
                .as_ref()
                .is_none_or(|a| item.audiences.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn new_input() -> NewContentInput {
        NewContentInput {
            kind: "FLOW".into(),
            name: "Invite a teammate".into(),
            description: Some("Shows where the invite button is".into()),
            status: None,
            audiences: vec!["Admins".into(), "Admins".into(), "Trial".into()],
        }
    }

    fn ids() -> (ContentId, SiteId) {
        (ContentId(Uuid::now_v7()), SiteId(Uuid::now_v7()))
    }

    #[test]
    fn create_defaults_to_draft_and_dedups_audiences() {
        let (id, site) = ids();
        let item = ContentItem::create(id, site, &new_input(), Utc::now()).expect("valid");
        assert_eq!(item.status, ContentStatus::Draft);
        assert_eq!(item.kind, ContentKind::Flow);
        assert!(!item.generated);
        let names: Vec<_> = item.audiences.iter().map(Audience::as_str).collect();
        assert_eq!(names, ["Admins", "Trial"]);
    }

    #[test]
    fn create_validates_every_field() {
        type Case = (&'static str, fn(&mut NewContentInput));
        let cases: [Case; 6] = [
            ("kind", |i| i.kind = "VIDEO".into()),
            ("name", |i| i.name = "  ".into()),
            ("name", |i| i.name = "x".repeat(121)),
            ("description", |i| i.description = Some("x".repeat(2001))),
            ("status", |i| i.status = Some("LIVE".into())),
            ("audiences[1]", |i| {
                i.audiences = vec!["ok".into(), " ".into()]
            }),
        ];
        for (field, mutate) in cases {
            let mut input = new_input();
            mutate(&mut input);
            let (id, site) = ids();
            let err = ContentItem::create(id, site, &input, Utc::now()).expect_err(field);
            assert_eq!(err.field_errors()[0].field, field);
        }
        let mut input = new_input();
        input.audiences = (0..21).map(|i| format!("a{i}")).collect();
        let (id, site) = ids();
        let err = ContentItem::create(id, site, &input, Utc::now()).expect_err("too many");
        assert_eq!(err.field_errors()[0].field, "audiences");
    }

    #[test]
    fn names_are_one_line_descriptions_may_have_several() {
        type Case = (&'static str, fn(&mut NewContentInput), bool);
        let cases: [Case; 16] = [
            ("name", |i| i.name = "Exporter les données 📤".into(), true),
            ("name", |i| i.name = "データを書き出す".into(), true),
            ("name", |i| i.name = "Export\u{0}".into(), false),
            ("name", |i| i.name = "Export\ndata".into(), false),
            ("name", |i| i.name = "Export\u{1b}[1m".into(), false),
            ("name", |i| i.name = "Export\u{85}".into(), false),
            ("name", |i| i.name = "Export\u{202E}atad".into(), false),
            ("name", |i| i.name = "Ex\u{200B}port".into(), false),
            (
                "description",
                |i| i.description = Some("Step one.\nStep two.\r\n\tDone.".into()),
                true,
            ),
            (
                "description",
                |i| i.description = Some("عربى \u{200F}".into()),
                true,
            ),
            (
                "description",
                |i| i.description = Some("bell\u{7}".into()),
                false,
            ),
            (
                "description",
                |i| i.description = Some("nul\u{0}".into()),
                false,
            ),
            (
                "description",
                |i| i.description = Some("nel\u{85}".into()),
                false,
            ),
            (
                "audiences[0]",
                |i| i.audiences = vec!["Équipe 🇫🇷".into()],
                true,
            ),
            (
                "audiences[0]",
                |i| i.audiences = vec!["Admins\n".into()],
                false,
            ),
            (
                "audiences[1]",
                |i| i.audiences = vec!["ok".into(), "\u{202D}Admins".into()],
                false,
            ),
        ];
        for (field, mutate, valid) in cases {
            let mut input = new_input();
            mutate(&mut input);
            let (id, site) = ids();
            match ContentItem::create(id, site, &input, Utc::now()) {
                Ok(_) => assert!(valid, "{field}: {input:?} was accepted"),
                Err(err) => {
                    assert!(!valid, "{field}: {input:?} was rejected: {err:?}");
                    assert_eq!(err.field_errors()[0].field, field);
                }
            }
        }
        let err = ContentPatchInput {
            status: None,
            audiences: Some(vec!["Trial".into(), "Tri\u{0}al".into()]),
        }
        .parse()
        .expect_err("control character");
        assert_eq!(err.field_errors()[0].field, "audiences[1]");
        assert!(Audience::parse("Admins\u{2066}").is_err());
        assert!(Audience::parse("Administrateurs").is_ok());
    }

    #[test]
    fn retargeting_a_generated_flow() {
        let (id, site) = ids();
        let t0 = Utc::now();
        let origin = GeneratedFrom {
            session_id: crate::ids::SessionId(uuid::Uuid::now_v7()),
            message_id: crate::ids::MessageId(uuid::Uuid::now_v7()),
            answer: "Open Settings, then Export.".into(),
        };
        let mut flow =
            ContentItem::generated_flow(id, site, "Export data".into(), "".into(), origin, t0);
        assert!(flow.generated);
        assert_eq!(flow.status, ContentStatus::Published);
        assert!(flow.is_targeted_at_no_users());
        assert!(!flow.is_shown_to_everyone());

        let t1 = t0 + chrono::Duration::seconds(1);
        let patch = ContentPatchInput {
            status: None,
            audiences: Some(vec![]),
        }
        .parse()
        .expect("valid");
        assert!(flow.apply(&patch, t1));
        assert!(flow.is_shown_to_everyone());
        assert_eq!(flow.updated_at, t1);

        let same = ContentPatchInput {
            status: Some("PUBLISHED".into()),
            audiences: None,
        }
        .parse()
        .expect("valid");
        assert!(!flow.apply(&same, t1 + chrono::Duration::seconds(1)));
        assert_eq!(flow.updated_at, t1);
    }

    #[test]
    fn drafts_are_never_shown() {
        let (id, site) = ids();
        let item = ContentItem::create(id, site, &new_input(), Utc::now()).expect("valid");
        assert!(!item.is_shown_to_everyone());
    }

    #[test]
    fn patch_validation() {
        let err = ContentPatchInput {
            status: Some("GONE".into()),
            audiences: Some(vec!["".into()]),
        }
        .parse()
        .expect_err("invalid");
        let fields: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["status", "audiences[0]"]);
    }

    #[test]
    fn filters() {
        let (id, site) = ids();
        let mut input = new_input();
        input.status = Some("PUBLISHED".into());
        let item = ContentItem::create(id, site, &input, Utc::now()).expect("valid");
        let admins = Audience::parse("Admins").ok();
        let table = [
            (ContentFilter::default(), true),
            (
                ContentFilter {
                    kind: Some(ContentKind::Flow),
                    ..Default::default()
                },
                true,
            ),
            (
                ContentFilter {
                    kind: Some(ContentKind::Tooltip),
                    ..Default::default()
                },
                false,
            ),
            (
                ContentFilter {
                    status: Some(ContentStatus::Draft),
                    ..Default::default()
                },
                false,
            ),
            (
                ContentFilter {
                    audience: admins.clone(),
                    ..Default::default()
                },
                true,
            ),
            (
                ContentFilter {
                    audience: Some(Audience::no_users()),
                    ..Default::default()
                },
                false,
            ),
            (
                ContentFilter {
                    kind: Some(ContentKind::Flow),
                    status: Some(ContentStatus::Published),
                    audience: admins,
                },
                true,
            ),
        ];
        for (filter, expected) in table {
            assert_eq!(filter.matches(&item), expected, "{filter:?}");
        }
    }
}
