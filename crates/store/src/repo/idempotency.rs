//! Idempotency keys: reserved by a unique row and answered in the unit of
//! work of the request they guard (see `crate::unit`), and forgotten after
//! their lifetime.

use chatdesk_domain::idempotency::{KeyRecord, Reservation};
use chatdesk_domain::ports::{IdempotencyRepository, UnitOfWork};
use chatdesk_domain::Error;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::Failure;
use crate::connection::write_transaction;
use crate::rows::to_db_time;
use crate::schema::idempotency_keys;
use crate::{Store, StoreError};

/// Reserves a key unless a row has it; a concurrent reservation of the
/// same key waits for ours and then inserts nothing.
const RESERVE: &str = "INSERT INTO idempotency_keys (digest, fingerprint, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING";

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IdempotencyRepository for Store {
    fn forget_keys_before(&self, before: DateTime<Utc>) -> Result<(), Error> {
        let mut conn = self.conn()?;
        diesel::delete(
            idempotency_keys::table.filter(idempotency_keys::created_at.lt(to_db_time(before))),
        )
        .execute(&mut *conn)
        .map_err(StoreError::Query)?;
        Ok(())
    }

    fn reserve_key(&self, record: &KeyRecord) -> Result<Reservation, Error> {
        let now = to_db_time(record.at);
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            let sql = match conn.backend() {
                crate::Backend::Postgres => RESERVE.to_string(),
                crate::Backend::Sqlite => RESERVE.replace('$', "?"),
            };
            let inserted = diesel::sql_query(sql)
                .bind::<Text, _>(&record.digest)
                .bind::<Text, _>(&record.fingerprint)
                .bind::<Timestamp, _>(now)
                .execute(conn)?;
            if inserted == 1 {
                return Ok(Reservation::Reserved);
            }
            let (fingerprint, status, answer): (String, Option<i32>, Option<String>) =
                idempotency_keys::table
                    .find(&record.digest)
                    .select((
                        idempotency_keys::fingerprint,
                        idempotency_keys::status,
                        idempotency_keys::answer,
                    ))
                    .first(conn)?;
            if fingerprint != record.fingerprint {
                return Ok(Reservation::OtherRequest);
            }
            Ok::<_, Failure>(match (status, answer) {
                (Some(status), Some(answer)) => Reservation::Answered {
                    status: u16::try_from(status).unwrap_or(500),
                    sealed: hex_decode(&answer).ok_or(StoreError::InvalidValue {
                        table: "idempotency_keys",
                        column: "answer",
                        message: "is not hex".into(),
                    })?,
                },
                _ => Reservation::InProgress,
            })
        })?)
    }

    fn record_answer(
        &self,
        digest: &str,
        status: u16,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut conn = self.conn()?;
        diesel::update(idempotency_keys::table.find(digest))
            .set((
                idempotency_keys::status.eq(Some(i32::from(status))),
                idempotency_keys::answer.eq(Some(hex_encode(sealed))),
                idempotency_keys::answered_at.eq(Some(to_db_time(now))),
            ))
            .execute(&mut *conn)
            .map_err(StoreError::Query)?;
        Ok(())
    }
}

impl UnitOfWork for Store {
    fn atomically(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<(), Error> {
        self.unit_of_work(work)
    }
}
