//! The chat widget of a site: its Builder settings, publishing and pausing,
//! and the gate that decides whether the chat may open.

use chrono::{DateTime, Utc};

use crate::closed_enum::closed_enum;
use crate::email::Email;
use crate::error::{Error, Validator};
use crate::ids::{SiteId, WidgetId};
use crate::site::Site;
use crate::tenant::Plan;
use crate::version::Version;

closed_enum!(
    /// Whether the widget is live.
    WidgetStatus {
        /// Made but never published.
        Draft => "DRAFT",
        /// Published.
        Active => "ACTIVE",
        /// Paused after publishing.
        Paused => "PAUSED",
    }
);

closed_enum!(
    /// Where the widget sits on the page.
    WidgetPosition {
        /// Bottom right corner.
        BottomRight => "BOTTOM_RIGHT",
        /// Bottom left corner.
        BottomLeft => "BOTTOM_LEFT",
        /// Top right corner.
        TopRight => "TOP_RIGHT",
        /// Top left corner.
        TopLeft => "TOP_LEFT",
    }
);

/// Questions a visitor may ask per session unless the Builder says otherwise.
pub const DEFAULT_RATE_LIMIT_PER_SESSION: u32 = 20;
/// The bounds of the per-session rate limit.
pub const RATE_LIMIT_BOUNDS: (u32, u32) = (1, 1000);
/// Length limits of the Builder's text fields, in characters.
pub const WELCOME_MESSAGE_MAX: usize = 500;
/// See [`WELCOME_MESSAGE_MAX`].
pub const DISCLAIMER_MAX: usize = 500;
/// See [`WELCOME_MESSAGE_MAX`].
pub const PERSONA_MAX: usize = 2000;
/// See [`WELCOME_MESSAGE_MAX`].
pub const INSUFFICIENT_CREDITS_MESSAGE_MAX: usize = 500;

/// The Builder's editable fields, as a client sends them (unparsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidgetSettingsInput {
    /// Greeting shown when the chat opens (1–500 characters).
    pub welcome_message: String,
    /// Small print under the chat (≤ 500, blank for none).
    pub disclaimer: Option<String>,
    /// `BOTTOM_RIGHT`, `BOTTOM_LEFT`, `TOP_RIGHT` or `TOP_LEFT`.
    pub position: String,
    /// Address that receives support tickets instead of the owner.
    pub support_email: Option<String>,
    /// Extra system prompt for the assistant (≤ 2000).
    pub persona: Option<String>,
    /// Shown when the tenant is out of credits (1–500).
    pub insufficient_credits_message: Option<String>,
    /// Questions per session (1–1000); default 20.
    pub rate_limit_per_session: Option<i64>,
    /// Which optional fields the request named: the others keep their
    /// current values (or take their defaults when the widget is made).
    pub named: NamedSettings,
}

/// Which of the Builder's optional fields a request named. A `PUT` never
/// changes a field it did not name; naming one with no value clears it (or
/// restores its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedSettings {
    /// `disclaimer`.
    pub disclaimer: bool,
    /// `supportEmail`.
    pub support_email: bool,
    /// `persona`.
    pub persona: bool,
    /// `insufficientCreditsMessage`.
    pub insufficient_credits_message: bool,
    /// `rateLimitPerSession`.
    pub rate_limit_per_session: bool,
}

impl NamedSettings {
    /// Every field named: the settings replace all of the current ones.
    pub const ALL: NamedSettings = NamedSettings {
        disclaimer: true,
        support_email: true,
        persona: true,
        insufficient_credits_message: true,
        rate_limit_per_session: true,
    };
}

impl Default for NamedSettings {
    fn default() -> Self {
        NamedSettings::ALL
    }
}

/// The Builder's fields, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSettings {
    /// Greeting shown when the chat opens.
    pub welcome_message: String,
    /// Small print under the chat.
    pub disclaimer: Option<String>,
    /// Where the widget sits.
    pub position: WidgetPosition,
    /// Support email override.
    pub support_email: Option<Email>,
    /// Extra system prompt.
    pub persona: Option<String>,
    /// Shown when the tenant is out of credits.
    pub insufficient_credits_message: String,
    /// Questions per session.
    pub rate_limit_per_session: u32,
}

impl WidgetSettings {
    /// These settings for the fields `named`, and `current`'s for the
    /// others (the required fields are always named).
    pub fn keeping(self, current: &WidgetSettings, named: NamedSettings) -> WidgetSettings {
        fn pick<T: Clone>(named: bool, new: T, current: &T) -> T {
            if named {
                new
            } else {
                current.clone()
            }
        }
        WidgetSettings {
            welcome_message: self.welcome_message,
            position: self.position,
            disclaimer: pick(named.disclaimer, self.disclaimer, &current.disclaimer),
            support_email: pick(
                named.support_email,
                self.support_email,
                &current.support_email,
            ),
            persona: pick(named.persona, self.persona, &current.persona),
            insufficient_credits_message: pick(
                named.insufficient_credits_message,
                self.insufficient_credits_message,
                &current.insufficient_credits_message,
            ),
            rate_limit_per_session: pick(
                named.rate_limit_per_session,
                self.rate_limit_per_session,
                &current.rate_limit_per_session,
            ),
        }
    }
}

/// The message shown when the tenant is out of credits, unless set.
pub const DEFAULT_INSUFFICIENT_CREDITS_MESSAGE: &str =
    "Our assistant is unavailable right now. Please try again later or contact support.";

impl WidgetSettingsInput {
    /// Validates every field, reporting all errors at once by field name.
    pub fn parse(&self) -> Result<WidgetSettings, Error> {
        let mut v = Validator::new();
        let welcome_message = v.check(
            "welcomeMessage",
            crate::text::bounded(&self.welcome_message, 1, WELCOME_MESSAGE_MAX),
        );
        let disclaimer = v.check(
            "disclaimer",
            crate::text::optional(self.disclaimer.as_deref(), DISCLAIMER_MAX),
        );
        let position = v.check("position", self.position.parse::<WidgetPosition>());
        let support_email = v.check(
            "supportEmail",
            match self.support_email.as_deref() {
                None => Ok(None),
                Some(raw) if raw.trim().is_empty() && !raw.chars().any(char::is_control) => {
                    Ok(None)
                }
                Some(raw) => Email::parse(raw).map(Some),
            },
        );
        let persona = v.check(
            "persona",
            crate::text::optional(self.persona.as_deref(), PERSONA_MAX),
        );
        let insufficient_credits_message = v.check(
            "insufficientCreditsMessage",
            crate::text::optional(
                self.insufficient_credits_message.as_deref(),
                INSUFFICIENT_CREDITS_MESSAGE_MAX,
            )
            .map(|m| m.unwrap_or_else(|| DEFAULT_INSUFFICIENT_CREDITS_MESSAGE.to_string())),
        );
        let (min, max) = RATE_LIMIT_BOUNDS;
        let rate_limit_per_session = v.check(
            "rateLimitPerSession",
            match self.rate_limit_per_session {
                None => Ok(DEFAULT_RATE_LIMIT_PER_SESSION),
                Some(n) if n >= i64::from(min) && n <= i64::from(max) => {
                    u32::try_from(n).map_err(|_| "is out of range".to_string())
                }
                Some(_) => Err(format!("must be between {min} and {max}")),
            },
        );
        v.finish()?;
        match (
            welcome_message,
            disclaimer,
            position,
            support_email,
            persona,
            insufficient_credits_message,
            rate_limit_per_session,
        ) {
            (Some(w), Some(d), Some(p), Some(s), Some(pe), Some(i), Some(r)) => {
                Ok(WidgetSettings {
                    welcome_message: w,
                    disclaimer: d,
                    position: p,
                    support_email: s,
                    persona: pe,
                    insufficient_credits_message: i,
                    rate_limit_per_session: r,
                })
            }
            _ => Err(Error::Internal(
                "widget settings validation lost an error".into(),
            )),
        }
    }
}

/// The chat widget of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatWidget {
    /// Its id.
    pub id: WidgetId,
    /// Its site (one widget per site).
    pub site_id: SiteId,
    /// Draft, active or paused.
    pub status: WidgetStatus,
    /// When it was last published.
    pub published_at: Option<DateTime<Utc>>,
    /// The Builder's fields.
    pub settings: WidgetSettings,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write.
    pub version: Version,
}

/// A change of a widget's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetTransition {
    /// ACTIVE, `publishedAt` now.
    Publish,
    /// PAUSED (`publishedAt` kept).
    Pause,
}

impl WidgetTransition {
    /// Makes the change on `widget` of `site`, which must be mapped: the
    /// store calls this with the site's row locked, so the mapping it
    /// checks is the current one, then writes the result conditionally.
    pub fn apply(
        self,
        widget: &mut ChatWidget,
        site: &Site,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if !site.is_mapped() {
            return Err(Error::SiteNotMapped);
        }
        match self {
            WidgetTransition::Publish => {
                widget.status = WidgetStatus::Active;
                widget.published_at = Some(now);
            }
            WidgetTransition::Pause => widget.status = WidgetStatus::Paused,
        }
        widget.updated_at = now;
        widget.version = Version(widget.version.0 + 1);
        Ok(())
    }
}

impl ChatWidget {
    /// The entity tag of the widget's representation, which also shows its
    /// site's theme: made from both versions.
    pub fn entity_tag(&self, site: &Site) -> String {
        crate::version::entity_tag(&[self.version, site.version])
    }

    /// Replaces the Builder's settings (never the status), stamped `now`
    /// and one version on; returns whether anything changed.
    pub fn change_settings(&mut self, settings: WidgetSettings, now: DateTime<Utc>) -> bool {
        if self.settings == settings {
            return false;
        }
        self.settings = settings;
        self.updated_at = now;
        self.version = Version(self.version.0 + 1);
        true
    }

    /// A new DRAFT widget.
    pub fn new(
        id: WidgetId,
        site_id: SiteId,
        settings: WidgetSettings,
        now: DateTime<Utc>,
    ) -> Self {
        ChatWidget {
            id,
            site_id,
            status: WidgetStatus::Draft,
            published_at: None,
            settings,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        }
    }
}

closed_enum!(
    /// Why the chat may not open, in the order the gate checks.
    GateClosed {
        /// The site's mapping is not COMPLETED.
        SiteNotMapped => "SITE_NOT_MAPPED",
        /// The tenant is not on PRO or ENTERPRISE.
        FeatureLocked => "FEATURE_LOCKED",
        /// The site has no widget.
        WidgetDisabled => "WIDGET_DISABLED",
        /// The widget was published, then paused.
        WidgetPaused => "WIDGET_PAUSED",
        /// The widget is a draft that was never published.
        WidgetNotPublished => "WIDGET_NOT_PUBLISHED",
    }
);

/// The widget gate: `Ok(widget)` when the chat may open, else the first
/// reason it may not, checked in this order: site mapped, plan includes the
/// widget, widget exists, widget active (a widget paused after it was
/// published is WIDGET_PAUSED; one never published, even if it was paused
/// as a draft, is WIDGET_NOT_PUBLISHED).
pub fn chat_gate<'w>(
    site: &Site,
    plan: Plan,
    widget: Option<&'w ChatWidget>,
) -> Result<&'w ChatWidget, GateClosed> {
    if !site.is_mapped() {
        return Err(GateClosed::SiteNotMapped);
    }
    if !plan.includes_chat_widget() {
        return Err(GateClosed::FeatureLocked);
    }
    let widget = widget.ok_or(GateClosed::WidgetDisabled)?;
    match (widget.status, widget.published_at) {
        (WidgetStatus::Active, _) => Ok(widget),
        // A draft paused before it was ever published was never live.
        (WidgetStatus::Paused, Some(_)) => Err(GateClosed::WidgetPaused),
        (WidgetStatus::Paused, None) | (WidgetStatus::Draft, _) => {
            Err(GateClosed::WidgetNotPublished)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::MappingStatus;
    use crate::testing::builders::{a_site, a_widget};

    fn input() -> WidgetSettingsInput {
        WidgetSettingsInput {
            welcome_message: "Hi! How can we help?".into(),
            position: "BOTTOM_RIGHT".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let settings = input().parse().expect("valid");
        assert_eq!(settings.rate_limit_per_session, 20);
        assert_eq!(
            settings.insufficient_credits_message,
            DEFAULT_INSUFFICIENT_CREDITS_MESSAGE
        );
        assert_eq!(settings.disclaimer, None);
        assert_eq!(settings.support_email, None);
    }

    #[test]
    fn each_field_is_validated() {
        type Case = (&'static str, fn(&mut WidgetSettingsInput));
        let cases: [Case; 9] = [
            ("welcomeMessage", |i| i.welcome_message = " ".into()),
            ("welcomeMessage", |i| i.welcome_message = "x".repeat(501)),
            ("disclaimer", |i| i.disclaimer = Some("x".repeat(501))),
            ("position", |i| i.position = "MIDDLE".into()),
            ("supportEmail", |i| {
                i.support_email = Some("not-an-email".into())
            }),
            ("persona", |i| i.persona = Some("x".repeat(2001))),
            ("insufficientCreditsMessage", |i| {
                i.insufficient_credits_message = Some("x".repeat(501))
            }),
            ("rateLimitPerSession", |i| {
                i.rate_limit_per_session = Some(0)
            }),
            ("rateLimitPerSession", |i| {
                i.rate_limit_per_session = Some(1001)
            }),
        ];
        for (field, mutate) in cases {
            let mut i = input();
            mutate(&mut i);
            let err = i.parse().expect_err(field);
            let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.clone()).collect();
            assert_eq!(fields, [field]);
        }
        let mut ok = input();
        ok.rate_limit_per_session = Some(1000);
        ok.support_email = Some(" Help@Example.com ".into());
        let settings = ok.parse().expect("valid");
        assert_eq!(settings.rate_limit_per_session, 1000);
        assert_eq!(
            settings.support_email.map(String::from),
            Some("help@example.com".into())
        );
    }

    #[test]
    fn text_fields_may_span_lines_but_hold_no_control_characters() {
        type Case = (&'static str, fn(&mut WidgetSettingsInput), bool);
        let cases: [Case; 16] = [
            (
                "welcomeMessage",
                |i| i.welcome_message = "Hi!\nAsk me anything.\r\n\t— Team 👋".into(),
                true,
            ),
            (
                "welcomeMessage",
                |i| i.welcome_message = "こんにちは".into(),
                true,
            ),
            (
                "welcomeMessage",
                |i| i.welcome_message = "Hi\u{0}".into(),
                false,
            ),
            (
                "welcomeMessage",
                |i| i.welcome_message = "Hi\u{1b}[5m".into(),
                false,
            ),
            (
                "welcomeMessage",
                |i| i.welcome_message = "Hi\u{85}".into(),
                false,
            ),
            (
                "disclaimer",
                |i| i.disclaimer = Some("Line 1\nLine 2".into()),
                true,
            ),
            ("disclaimer", |i| i.disclaimer = Some("\u{7}".into()), false),
            (
                "persona",
                |i| i.persona = Some("You are helpful.\n- Be brief.\n- Be kind.".into()),
                true,
            ),
            ("persona", |i| i.persona = Some("x\u{7f}".into()), false),
            (
                "insufficientCreditsMessage",
                |i| i.insufficient_credits_message = Some("Out of credits.\nSorry!".into()),
                true,
            ),
            (
                "insufficientCreditsMessage",
                |i| i.insufficient_credits_message = Some("\u{9b}".into()),
                false,
            ),
            (
                "supportEmail",
                |i| i.support_email = Some("  ".into()),
                true,
            ),
            (
                "supportEmail",
                |i| i.support_email = Some("help@example.com\n".into()),
                false,
            ),
            (
                "supportEmail",
                |i| i.support_email = Some("\n".into()),
                false,
            ),
            (
                "supportEmail",
                |i| i.support_email = Some("help\u{0}@example.com".into()),
                false,
            ),
            (
                "supportEmail",
                |i| i.support_email = Some("help@example.com\u{202E}".into()),
                false,
            ),
        ];
        for (field, mutate, valid) in cases {
            let mut i = input();
            mutate(&mut i);
            match i.parse() {
                Ok(_) => assert!(valid, "{field}: {i:?} was accepted"),
                Err(err) => {
                    assert!(!valid, "{field}: {i:?} was rejected: {err:?}");
                    let fields: Vec<_> =
                        err.field_errors().iter().map(|e| e.field.clone()).collect();
                    assert_eq!(fields, [field]);
                }
            }
        }
    }

    #[test]
    fn settings_not_named_keep_their_current_values() {
        let current = WidgetSettingsInput {
            disclaimer: Some("Small print".into()),
            persona: Some("Be brief.".into()),
            rate_limit_per_session: Some(5),
            ..input()
        }
        .parse()
        .expect("valid");
        let only_persona = WidgetSettingsInput {
            welcome_message: "Hello".into(),
            persona: None,
            ..input()
        }
        .parse()
        .expect("valid");
        let merged = only_persona.clone().keeping(&current, only_persona_named());
        assert_eq!(merged.welcome_message, "Hello");
        assert_eq!(merged.persona, None, "named without a value: cleared");
        assert_eq!(merged.disclaimer.as_deref(), Some("Small print"));
        assert_eq!(merged.rate_limit_per_session, 5);
        let all = only_persona.clone().keeping(&current, NamedSettings::ALL);
        assert_eq!(all, only_persona);
    }

    fn only_persona_named() -> NamedSettings {
        NamedSettings {
            disclaimer: false,
            support_email: false,
            persona: true,
            insufficient_credits_message: false,
            rate_limit_per_session: false,
        }
    }

    #[test]
    fn all_errors_are_reported_together() {
        let i = WidgetSettingsInput {
            welcome_message: String::new(),
            position: "LEFT".into(),
            rate_limit_per_session: Some(-1),
            ..Default::default()
        };
        let err = i.parse().expect_err("invalid");
        assert_eq!(err.field_errors().len(), 3);
    }

    #[test]
    fn publish_and_pause_need_a_mapped_site() {
        let now = Utc::now();
        for status in MappingStatus::ALL {
            let site = a_site().mapping_status(*status).build();
            let mut widget = a_widget().site_id(site.id).build();
            let published = WidgetTransition::Publish.apply(&mut widget, &site, now);
            let paused = WidgetTransition::Pause.apply(&mut widget.clone(), &site, now);
            if *status == MappingStatus::Completed {
                assert_eq!(published, Ok(()));
                assert_eq!(widget.status, WidgetStatus::Active);
                assert_eq!(widget.published_at, Some(now));
                assert_eq!(widget.version, Version(2));
                assert_eq!(paused, Ok(()));
            } else {
                assert_eq!(published, Err(Error::SiteNotMapped), "{status}");
                assert_eq!(paused, Err(Error::SiteNotMapped), "{status}");
                assert_eq!(widget.status, WidgetStatus::Draft);
                assert_eq!(widget.published_at, None);
                assert_eq!(widget.version, Version::FIRST);
            }
        }
    }

    #[test]
    fn pausing_keeps_published_at() {
        let now = Utc::now();
        let site = a_site().mapping_status(MappingStatus::Completed).build();
        let mut widget = a_widget().build();
        WidgetTransition::Publish
            .apply(&mut widget, &site, now)
            .expect("mapped");
        WidgetTransition::Pause
            .apply(&mut widget, &site, now + chrono::Duration::seconds(5))
            .expect("mapped");
        assert_eq!(widget.status, WidgetStatus::Paused);
        assert_eq!(widget.published_at, Some(now));
    }

    #[test]
    fn gate_checks_in_order() {
        use GateClosed::*;
        use MappingStatus::*;
        use WidgetStatus::*;
        // (mapping, plan, widget status or no widget, expected)
        type Case = (
            MappingStatus,
            Plan,
            Option<WidgetStatus>,
            Result<(), GateClosed>,
        );
        let table: [Case; 12] = [
            (Pending, Plan::Free, None, Err(SiteNotMapped)),
            (InProgress, Plan::Pro, Some(Active), Err(SiteNotMapped)),
            (Failed, Plan::Enterprise, Some(Active), Err(SiteNotMapped)),
            (Completed, Plan::Free, None, Err(FeatureLocked)),
            (Completed, Plan::Starter, Some(Active), Err(FeatureLocked)),
            (Completed, Plan::Pro, None, Err(WidgetDisabled)),
            (Completed, Plan::Enterprise, None, Err(WidgetDisabled)),
            (Completed, Plan::Pro, Some(Paused), Err(WidgetPaused)),
            (Completed, Plan::Pro, Some(Draft), Err(WidgetNotPublished)),
            (Completed, Plan::Pro, Some(Active), Ok(())),
            (Completed, Plan::Enterprise, Some(Active), Ok(())),
            (Pending, Plan::Pro, Some(Paused), Err(SiteNotMapped)),
        ];
        for (mapping, plan, status, expected) in table {
            let site = a_site().mapping_status(mapping).build();
            // Active and paused widgets of the table were published once.
            let published = (status != Some(Draft)).then(crate::testing::builders::t0);
            let widget = status.map(|s| {
                a_widget()
                    .site_id(site.id)
                    .status(s)
                    .published_at(published)
                    .build()
            });
            let result = chat_gate(&site, plan, widget.as_ref()).map(|_| ());
            assert_eq!(result, expected, "{mapping} {plan} {status:?}");
        }
    }

    #[test]
    fn a_draft_paused_before_it_was_published_is_not_published() {
        let site = a_site().mapping_status(MappingStatus::Completed).build();
        let widget = a_widget()
            .site_id(site.id)
            .status(WidgetStatus::Paused)
            .published_at(None)
            .build();
        assert_eq!(
            chat_gate(&site, Plan::Pro, Some(&widget)).map(|_| ()),
            Err(GateClosed::WidgetNotPublished)
        );
    }
}
