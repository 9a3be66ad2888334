//! Newtype ids. Every entity has its own id type so a `SiteId` can never be
//! passed where a `TenantId` is expected. Ids are UUIDs; new ones are
//! time-ordered (v7) for index locality.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A customer company.
    TenantId
);
id_type!(
    /// A team member of a tenant.
    MemberId
);
id_type!(
    /// A website of a tenant; the tenancy boundary for everything below it.
    SiteId
);
id_type!(
    /// The chat widget of a site.
    WidgetId
);
id_type!(
    /// A visitor of a site.
    EndUserId
);
id_type!(
    /// A conversation between one visitor and one widget.
    SessionId
);
id_type!(
    /// One bubble of a conversation.
    MessageId
);
id_type!(
    /// A visitor's vote on an assistant message.
    FeedbackId
);
id_type!(
    /// A support ticket opened from a conversation.
    TicketId
);
id_type!(
    /// A Flow or a Tooltip of a site's content library.
    ContentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let id = SiteId(Uuid::now_v7());
        let parsed: SiteId = id.to_string().parse().expect("parses");
        assert_eq!(parsed, id);
        assert!("not-a-uuid".parse::<SiteId>().is_err());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = TicketId(Uuid::nil());
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, "\"00000000-0000-0000-0000-000000000000\"");
    }
}
