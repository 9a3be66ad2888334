//! `build_mailer`, `describe` and `LogMailer`.

mod common;

use std::time::Duration;

use chatdesk_domain::ports::{MailOutcome, Mailer};
use chatdesk_mail::testing::{FakeResendServer, FakeSmtpServer};
use chatdesk_mail::{
    build_mailer, describe, LogMailer, MailConfig, MailConfigError, DEFAULT_FROM, LOG_TAG,
    NO_MAIL_SERVICE,
};
use common::{capture_logs, ticket_email};

fn config(smtp_url: Option<&str>, resend_api_key: Option<&str>) -> MailConfig {
    MailConfig {
        smtp_url: smtp_url.map(str::to_owned),
        resend_api_key: resend_api_key.map(str::to_owned),
        ..MailConfig::default()
    }
}

fn resend_config(base_url: &str, smtp_url: Option<&str>) -> MailConfig {
    MailConfig {
        resend_base_url: Some(base_url.to_owned()),
        ..config(smtp_url, Some("re_secret_key"))
    }
}

#[test]
fn the_default_sender() {
    assert_eq!(MailConfig::default().from, DEFAULT_FROM);
    assert_eq!(DEFAULT_FROM, "chatdesk <no-reply@chatdesk.localhost>");
}

#[test]
fn log_mailer_logs_the_whole_payload() {
    let sent = ticket_email();

    let (outcome, logs) = capture_logs(|| LogMailer.send(&sent));

    assert_eq!(outcome, Ok(MailOutcome::LoggedOnly));
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains(LOG_TAG), "{logs}");
    assert_eq!(LOG_TAG, "[email] support_ticket_created");
    assert!(logs.contains(NO_MAIL_SERVICE), "{logs}");
    assert_eq!(
        NO_MAIL_SERVICE,
        "no API key (RESEND_API_KEY) or SMTP_URL configured (payload logged only)"
    );
    for part in [
        "help@example.com",
        "visitor@example.org",
        "[chatdesk] Ticket: cannot log in",
        "ticket-0190f2c4@chatdesk.localhost",
        "Visitor: I cannot log in.",
    ] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }
    // The visitor's text cannot start a log line of its own.
    assert_eq!(logs.lines().count(), 1, "{logs}");
}

#[test]
fn smtp_when_a_url_is_set() {
    let server = FakeSmtpServer::start();

    let (mailer, logs) = capture_logs(|| build_mailer(&config(Some(&server.url()), None)));
    let mailer = mailer.expect("valid settings");

    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    assert_eq!(server.messages().len(), 1);
    assert!(!logs.contains("WARN"), "{logs}");
}

#[test]
fn log_only_without_a_mail_service() {
    for blank in [None, Some(""), Some("   ")] {
        let settings = MailConfig {
            resend_base_url: blank.map(str::to_owned),
            ..config(blank, blank)
        };
        let (mailer, logs) = capture_logs(|| build_mailer(&settings));
        let mailer = mailer.expect("valid settings");

        assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::LoggedOnly));
        assert!(!logs.contains("WARN"), "{logs}");
        assert!(logs.contains("logged only"), "{logs}");
    }
}

#[test]
fn resend_when_a_key_is_set() {
    let server = FakeResendServer::start();

    let (mailer, logs) = capture_logs(|| build_mailer(&resend_config(&server.url(), None)));
    let mailer = mailer.expect("valid settings");

    assert!(!logs.contains("WARN"), "{logs}");
    assert!(
        logs.contains(&format!("mail goes through resend ({})", server.url())),
        "{logs}"
    );
    assert!(!logs.contains("re_secret_key"), "{logs}");
    assert!(!logs.contains("not available"), "{logs}");
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    let delivered = server.wait_for_delivered(1, Duration::from_secs(5));
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].bearer(), Some("re_secret_key"));
    assert_eq!(
        delivered[0].from(),
        Some("chatdesk <no-reply@chatdesk.localhost>")
    );
}

#[test]
fn resend_goes_to_resends_own_api_by_default() {
    let (mailer, logs) = capture_logs(|| build_mailer(&config(None, Some("re_secret_key"))));

    assert!(mailer.is_ok());
    assert!(
        logs.contains("mail goes through resend (https://api.resend.com)"),
        "{logs}"
    );
}

#[test]
fn resend_wins_over_smtp_with_one_warning() {
    let resend = FakeResendServer::start();
    let smtp = FakeSmtpServer::start();
    let settings = resend_config(&resend.url(), Some(&smtp.url()));

    let (mailer, logs) = capture_logs(|| build_mailer(&settings));
    let mailer = mailer.expect("valid settings");

    assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
    assert!(
        logs.contains("RESEND_API_KEY and SMTP_URL are both set"),
        "{logs}"
    );
    assert!(logs.contains(&smtp.url()), "{logs}");
    assert!(!logs.contains("re_secret_key"), "{logs}");
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    assert_eq!(resend.delivered().len(), 1);
    assert!(smtp.messages().is_empty());
}

#[test]
fn a_base_url_without_a_key_is_not_used_and_says_so() {
    let smtp = FakeSmtpServer::start();
    for smtp_url in [None, Some(smtp.url())] {
        let settings = MailConfig {
            resend_base_url: Some("http://127.0.0.1:8025".to_owned()),
            ..config(smtp_url.as_deref(), None)
        };

        let (mailer, logs) = capture_logs(|| build_mailer(&settings));
        let mailer = mailer.expect("valid settings");

        assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
        assert!(
            logs.contains(
                "RESEND_BASE_URL (http://127.0.0.1:8025) is set but RESEND_API_KEY is not"
            ),
            "{logs}"
        );
        let want = if smtp_url.is_some() {
            MailOutcome::Sent
        } else {
            MailOutcome::LoggedOnly
        };
        assert_eq!(mailer.send(&ticket_email()), Ok(want));
    }
}

#[test]
fn invalid_resend_settings_are_refused() {
    for (key, base_url) in [
        (Some("re_secret_key"), "api.resend.com"),
        (Some("re_secret_key"), "smtp://api.resend.com"),
        (Some("re_secret_key"), "https://user:hunter2@api.resend.com"),
        (Some("re_secret_key"), "https://api.resend.com/emails"),
        (Some("re_secret_key"), "http://127.0.0.1:8025/?x=1"),
        // Checked even when not used.
        (None, "not a url"),
    ] {
        let settings = MailConfig {
            resend_base_url: Some(base_url.to_owned()),
            ..config(None, key)
        };
        let error = build_mailer(&settings)
            .err()
            .unwrap_or_else(|| panic!("{base_url:?} accepted"));

        assert!(
            matches!(error, MailConfigError::InvalidResendBaseUrl { .. }),
            "{base_url:?}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with("invalid RESEND_BASE_URL"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains("re_secret_key"), "{message}");
    }
    let error = build_mailer(&config(None, Some("re_secret key")))
        .err()
        .expect("a key with a space is refused");
    assert!(
        matches!(error, MailConfigError::InvalidResendApiKey { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("secret"), "{error}");
    // SMTP_URL is checked even when Resend is used.
    let error = build_mailer(&config(
        Some("http://smtp.example.com"),
        Some("re_secret_key"),
    ))
    .err()
    .expect("a bad SMTP_URL is refused");
    assert!(
        matches!(error, MailConfigError::InvalidSmtpUrl { .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_smtp_urls_are_refused() {
    for url in [
        "not a url",
        "127.0.0.1:2525",
        "http://127.0.0.1:2525",
        "smtp://",
        "smtp://127.0.0.1:99999",
        "smtp://127.0.0.1:2525?tls=sometimes",
        "ftp://ada:hunter2@mail.example.com",
    ] {
        let error = build_mailer(&config(Some(url), None))
            .err()
            .unwrap_or_else(|| panic!("{url:?} accepted"));

        assert!(
            matches!(error, MailConfigError::InvalidSmtpUrl { .. }),
            "{url:?}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with("invalid SMTP_URL"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    }
}

#[test]
fn valid_smtp_urls_are_accepted() {
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://localhost",
        "smtp://user:pass@smtp.example.com:587?tls=required",
        "smtp://user:pass@smtp.example.com:587?tls=opportunistic",
        "smtps://user:pass@smtp.example.com",
        "smtp://127.0.0.1:2525/my-ehlo-name",
    ] {
        let (built, _) = capture_logs(|| build_mailer(&config(Some(url), None)));
        assert!(built.is_ok(), "{url:?}: {:?}", built.err());
    }
}

#[test]
fn invalid_senders_are_refused() {
    for from in [
        "",
        "   ",
        "chatdesk",
        "chatdesk <not an address>",
        "a@b@c",
        "<@>",
    ] {
        for smtp_url in [None, Some("smtp://127.0.0.1:2525")] {
            let settings = MailConfig {
                from: from.to_owned(),
                ..config(smtp_url, None)
            };
            let error = build_mailer(&settings)
                .err()
                .unwrap_or_else(|| panic!("{from:?} accepted"));

            assert!(
                matches!(&error, MailConfigError::InvalidFrom { from: given, .. } if given == from),
                "{from:?}: {error:?}"
            );
            assert!(
                error.to_string().starts_with("invalid MAIL_FROM"),
                "{error}"
            );
        }
    }
}

#[test]
fn valid_senders_are_accepted() {
    for from in [
        DEFAULT_FROM,
        "no-reply@example.com",
        "  \"Chat Desk\" <no-reply@example.com> ",
    ] {
        let settings = MailConfig {
            from: from.to_owned(),
            ..config(Some("smtp://127.0.0.1:2525"), None)
        };
        assert!(build_mailer(&settings).is_ok(), "{from:?}");
    }
}

#[test]
fn describe_says_where_mail_goes_without_secrets() {
    let with_base = |base: &str, settings: MailConfig| MailConfig {
        resend_base_url: Some(base.to_owned()),
        ..settings
    };
    let table = [
        (
            config(Some("smtp://127.0.0.1:2525"), None),
            "smtp://127.0.0.1:2525",
        ),
        (
            config(
                Some("smtp://ada:hunter2@smtp.example.com:587?tls=required"),
                None,
            ),
            "smtp://ada:***@smtp.example.com:587?tls=required",
        ),
        (
            config(Some("smtps://ada:hun%40ter2@smtp.example.com"), None),
            "smtps://ada:***@smtp.example.com",
        ),
        (config(None, None), "log only"),
        (config(Some(" "), Some("")), "log only"),
        (
            config(None, Some("re_hunter2")),
            "resend (https://api.resend.com)",
        ),
        (
            with_base("http://127.0.0.1:8025/", config(None, Some("re_hunter2"))),
            "resend (http://127.0.0.1:8025)",
        ),
        (
            config(
                Some("smtp://ada:hunter2@mail.example.com"),
                Some("re_hunter2"),
            ),
            "resend (https://api.resend.com); SMTP_URL not used",
        ),
        (
            with_base("http://127.0.0.1:8025", config(None, None)),
            "log only (RESEND_BASE_URL not used: RESEND_API_KEY is not set)",
        ),
        (
            with_base(
                "http://127.0.0.1:8025",
                config(Some("smtp://ada:hunter2@mail.example.com"), None),
            ),
            "smtp://ada:***@mail.example.com (RESEND_BASE_URL not used: RESEND_API_KEY is not set)",
        ),
        (
            with_base(
                "https://ada:hunter2@proxy.example.com",
                config(None, Some("re_hunter2")),
            ),
            "resend (https://ada:***@proxy.example.com)",
        ),
        // Unparsable URLs are redacted too.
        (
            config(Some("smtp://ada:hunter2/x@"), None),
            "smtp://ada:***@",
        ),
    ];
    for (settings, expected) in table {
        let described = describe(&settings);
        assert_eq!(described, expected);
        assert!(!described.contains("hunter2"), "{described}");
        assert!(
            !described.to_lowercase().contains("not available"),
            "{described}"
        );
    }
}

#[test]
fn config_debug_hides_secrets() {
    let settings = MailConfig {
        resend_base_url: Some("https://ada:hunter2@proxy.example.com".to_owned()),
        ..config(
            Some("smtp://ada:hunter2@mail.example.com"),
            Some("re_hunter2"),
        )
    };
    let debug = format!("{settings:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("smtp://ada:***@mail.example.com"), "{debug}");
    assert!(
        debug.contains("https://ada:***@proxy.example.com"),
        "{debug}"
    );
}

#[test]
fn logging_in_without_tls_to_a_remote_server_warns() {
    let cases = [
        ("smtp://ada:hunter2@mail.example.com", true),
        (
            "smtp://ada:hunter2@mail.example.com:587?tls=required",
            false,
        ),
        ("smtps://ada:hunter2@mail.example.com", false),
        ("smtp://ada:hunter2@127.0.0.1:2525", false),
        ("smtp://mail.example.com", false),
    ];
    for (url, warns) in cases {
        let (built, logs) = capture_logs(|| build_mailer(&config(Some(url), None)));
        assert!(built.is_ok(), "{url}");
        assert_eq!(logs.contains("without TLS"), warns, "{url}: {logs}");
        assert!(!logs.contains("hunter2"), "{logs}");
    }
}
