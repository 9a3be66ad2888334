//! Optimistic concurrency: every editable row carries a [`Version`] that
//! each write bumps, the entity tag of its representation is made from it,
//! and a write may demand the version it was based on ([`Precondition`],
//! HTTP's `If-Match`), checked by the store inside the writing transaction.

use std::fmt;

use crate::error::{Entity, Error};

/// A row's version: 1 when made, plus one for every write that changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

impl Version {
    /// The version of a row just made.
    pub const FIRST: Version = Version(1);
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a write demands of the current state of the thing it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Nothing: the write applies to whatever is there, or makes it (it
    /// still changes only the fields it names).
    #[default]
    None,
    /// The thing must exist (`If-Match: *`): a write that would make it
    /// fails instead.
    Exists,
    /// The current entity tag must be one of these (`If-Match`). An empty
    /// list (a header that names no tag this API gave out) never matches.
    TagIn(Vec<String>),
}

impl Precondition {
    /// Whether a write may make the thing when it does not exist yet.
    pub fn allows_creation(&self) -> bool {
        *self == Precondition::None
    }

    /// `Ok` when `current_tag` satisfies the precondition, else
    /// [`Error::PreconditionFailed`] naming `entity`.
    pub fn check(&self, current_tag: &str, entity: Entity) -> Result<(), Error> {
        match self {
            Precondition::None | Precondition::Exists => Ok(()),
            Precondition::TagIn(tags) if tags.iter().any(|t| t == current_tag) => Ok(()),
            Precondition::TagIn(_) => Err(Error::PreconditionFailed(entity)),
        }
    }
}

/// The entity tag of a representation made from these versions, in order
/// (e.g. a widget's own version and its site's, whose theme it shows).
pub fn entity_tag(versions: &[Version]) -> String {
    versions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions() {
        let tag = entity_tag(&[Version(3), Version(7)]);
        assert_eq!(tag, "3.7");
        let table = [
            (Precondition::None, true),
            (Precondition::Exists, true),
            (Precondition::TagIn(vec!["3.7".into()]), true),
            (Precondition::TagIn(vec!["1.1".into(), "3.7".into()]), true),
            (Precondition::TagIn(vec!["3.6".into()]), false),
            (Precondition::TagIn(vec!["37".into()]), false),
            (Precondition::TagIn(vec![]), false),
        ];
        assert!(Precondition::None.allows_creation());
        assert!(!Precondition::Exists.allows_creation());
        assert!(!Precondition::TagIn(vec![tag.clone()]).allows_creation());
        for (precondition, ok) in table {
            let result = precondition.check(&tag, Entity::Widget);
            assert_eq!(result.is_ok(), ok, "{precondition:?}");
            if !ok {
                assert_eq!(result, Err(Error::PreconditionFailed(Entity::Widget)));
            }
        }
    }
}
