//! The widget Builder's shapes.

use super::*;

/// The chat widget as the Builder shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetView {
    /// Widget id.
    pub id: Uuid,
    /// Its site.
    pub site_id: Uuid,
    /// DRAFT, ACTIVE or PAUSED.
    #[schema(value_type = WidgetStatusSchema)]
    pub status: WidgetStatus,
    /// When it was last published.
    pub published_at: Option<DateTime<Utc>>,
    /// Greeting.
    pub welcome_message: String,
    /// Small print.
    pub disclaimer: Option<String>,
    /// Where it sits.
    #[schema(value_type = WidgetPositionSchema)]
    pub position: WidgetPosition,
    /// Support email override (tickets go here instead of the owner).
    pub support_email: Option<String>,
    /// Extra system prompt.
    pub persona: Option<String>,
    /// Shown when the tenant is out of credits.
    pub insufficient_credits_message: String,
    /// Questions per session.
    pub rate_limit_per_session: u32,
    /// The theme, taken from the site.
    pub theme: ThemeView,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl WidgetView {
    /// The widget with its site's theme.
    pub fn new(site: &Site, w: &ChatWidget) -> Self {
        WidgetView {
            id: w.id.as_uuid(),
            site_id: w.site_id.as_uuid(),
            status: w.status,
            published_at: w.published_at,
            welcome_message: w.settings.welcome_message.clone(),
            disclaimer: w.settings.disclaimer.clone(),
            position: w.settings.position,
            support_email: w.settings.support_email.as_ref().map(ToString::to_string),
            persona: w.settings.persona.clone(),
            insufficient_credits_message: w.settings.insufficient_credits_message.clone(),
            rate_limit_per_session: w.settings.rate_limit_per_session,
            theme: ThemeView::from(&site.theme),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// `PUT /sites/{siteId}/widget` body: the Builder's fields. `welcomeMessage`
/// and `position` are required; an optional field left out keeps its
/// current value (its default when the widget is made), and `null` (or a
/// blank text) clears it or restores its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaveWidget {
    /// Greeting, 1–500 characters, not blank (no control characters but
    /// tabs and line breaks).
    #[schema(min_length = 1, max_length = 500)]
    #[schema(
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub welcome_message: String,
    /// Small print, ≤ 500 characters (`null` or blank: none).
    #[serde(default, deserialize_with = "named")]
    #[schema(value_type = Option<String>, max_length = 500)]
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub disclaimer: Option<Option<String>>,
    /// Position on the page.
    #[schema(value_type = WidgetPositionSchema)]
    pub position: String,
    /// Support email override (`null` or blank: tickets go to the owner).
    #[serde(default, deserialize_with = "named")]
    #[schema(value_type = Option<String>)]
    pub support_email: Option<Option<String>>,
    /// Extra system prompt, ≤ 2000 characters (`null` or blank: none).
    #[serde(default, deserialize_with = "named")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub persona: Option<Option<String>>,
    /// Out-of-credits message, ≤ 500 characters (`null` or blank: the
    /// default message).
    #[serde(default, deserialize_with = "named")]
    #[schema(value_type = Option<String>, max_length = 500)]
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub insufficient_credits_message: Option<Option<String>>,
    /// Questions per session, 1–1000 (`null`: the default, 20).
    #[serde(default, deserialize_with = "named_whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub rate_limit_per_session: Option<Option<i64>>,
}

/// A field that may be left out (`None`), named as `null` (`Some(None)`) or
/// given (`Some(Some(value))`).
fn named<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// [`named`] for [`whole_number`]s.
fn named_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    whole_number(d).map(Some)
}

/// Reads an optional whole number, also when JSON writes it as `20.0`
/// (JSON Schema counts that as an integer); `20.5` is refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let number: Option<serde_json::Number> = Option::deserialize(d)?;
    number
        .map(|n| {
            n.as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| serde::de::Error::custom("must be a whole number"))
        })
        .transpose()
}
