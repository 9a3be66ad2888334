//! A generated help library that reads like a SaaS product's: names such
//! as "Export invoices to CSV" or "Set up single sign-on for guests", and
//! descriptions drawn from a few hundred words, so that some terms are in
//! most items and most are in few (as in a real library). Deterministic:
//! the same seed gives the same library and questions in every run.

use std::collections::HashSet;

use chatdesk_domain::content::ContentKind;

/// A small, fast, deterministic generator (SplitMix64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const VERBS: [&str; 40] = [
    "Export",
    "Import",
    "Create",
    "Delete",
    "Archive",
    "Rename",
    "Share",
    "Invite",
    "Remove",
    "Schedule",
    "Connect",
    "Disconnect",
    "Configure",
    "Set up",
    "Turn off",
    "Turn on",
    "Customize",
    "Filter",
    "Sort",
    "Merge",
    "Duplicate",
    "Restore",
    "Download",
    "Upload",
    "Sync",
    "Approve",
    "Assign",
    "Tag",
    "Publish",
    "Preview",
    "Print",
    "Track",
    "Edit",
    "Move",
    "Lock",
    "Transfer",
    "Verify",
    "Reset",
    "Update",
    "Cancel",
];

/// (object as in a name, its core words for a reworded question)
const OBJECTS: [(&str, &str); 64] = [
    ("invoices", "invoice"),
    ("a project", "project"),
    ("custom fields", "custom field"),
    ("a dashboard", "dashboard"),
    ("team members", "teammates"),
    ("billing details", "billing info"),
    ("a payment method", "card for payments"),
    ("webhooks", "webhook"),
    ("an API token", "api token"),
    ("single sign-on", "sso login"),
    ("two-factor authentication", "2fa codes"),
    ("email notifications", "notification emails"),
    ("a report", "reports"),
    ("saved views", "saved view"),
    ("a workspace", "workspaces"),
    ("user roles", "permissions for roles"),
    ("a shared calendar", "calendar"),
    ("time entries", "timesheet entries"),
    ("expense receipts", "receipt photos"),
    ("a purchase order", "purchase orders"),
    ("product variants", "variant of a product"),
    ("a price list", "price lists"),
    ("shipping zones", "shipping zone"),
    ("tax rates", "vat rate"),
    ("a discount code", "coupon discount"),
    ("customer segments", "segment of customers"),
    ("a survey", "surveys"),
    ("form responses", "responses to forms"),
    ("a knowledge base article", "help article"),
    ("support macros", "macro replies"),
    ("a ticket queue", "queue of tickets"),
    ("SLA policies", "sla targets"),
    ("a sales pipeline", "pipeline"),
    ("deal stages", "stages of deals"),
    ("contact lists", "contacts list"),
    ("an email campaign", "campaign emails"),
    ("a landing page", "landing pages"),
    ("audit logs", "audit log"),
    ("data retention rules", "retention policy"),
    ("a backup", "backups"),
    ("an integration", "integrations"),
    ("recurring tasks", "repeating task"),
    ("task dependencies", "dependent tasks"),
    ("a kanban board", "board columns"),
    ("a Gantt chart", "gantt timeline"),
    ("milestones", "milestone dates"),
    ("a budget", "budgets"),
    ("currency settings", "currencies"),
    ("the company logo", "logo"),
    ("a brand theme", "brand colours"),
    ("guest access", "guests"),
    ("file attachments", "attached files"),
    ("comment threads", "comments"),
    ("mentions", "mention alerts"),
    ("an approval workflow", "approvals"),
    ("inventory counts", "stock levels"),
    ("a warehouse", "warehouses"),
    ("payroll runs", "payroll"),
    ("leave requests", "vacation requests"),
    ("onboarding checklists", "onboarding checklist"),
    ("a mobile app login", "phone app sign in"),
    ("IP allowlists", "allowed ip addresses"),
    ("a sandbox account", "test sandbox"),
    ("usage quotas", "quota limits"),
];

const QUALIFIERS: [&str; 24] = [
    "",
    "",
    "",
    "",
    " to CSV",
    " in bulk",
    " from Salesforce",
    " for a client",
    " on mobile",
    " with Slack",
    " by date",
    " for your team",
    " from a template",
    " in the admin console",
    " to Google Sheets",
    " with Zapier",
    " per region",
    " for guests",
    " across workspaces",
    " from HubSpot",
    " to PDF",
    " with QuickBooks",
    " on a schedule",
    " with Microsoft Teams",
];

const AREAS: [&str; 24] = [
    "Settings",
    "Billing",
    "Admin",
    "Reports",
    "Projects",
    "Inbox",
    "Contacts",
    "Catalog",
    "Orders",
    "Finance",
    "People",
    "Security",
    "Integrations",
    "Marketing",
    "Helpdesk",
    "Analytics",
    "Inventory",
    "Calendar",
    "Workflows",
    "Documents",
    "Storefront",
    "Payroll",
    "Developer",
    "Compliance",
];

const DETAILS: [&str; 60] = [
    "pick the columns you need",
    "confirm with your password",
    "choose a date range",
    "map each field to a column",
    "decide who can see it",
    "check the preview before saving",
    "paste the secret from your provider",
    "drag rows into the order you want",
    "set a reminder for the owner",
    "name it so teammates can find it",
    "select several rows with shift-click",
    "undo within thirty seconds",
    "keep a copy of the old version",
    "scan the QR code with your phone",
    "enter the verification code",
    "limit it to one region",
    "add a note for accounting",
    "attach the signed contract",
    "round amounts to two decimals",
    "choose the fiscal year",
    "invite an external auditor",
    "watch the progress bar",
    "download the log afterwards",
    "pause it during holidays",
    "rotate the key every ninety days",
    "filter by owner or status",
    "group results by week",
    "send a test message first",
    "translate the labels",
    "pin it to the sidebar",
    "mark it as the default",
    "set a spending limit",
    "review the change history",
    "notify the requester automatically",
    "skip weekends and public holidays",
    "match the timezone of your office",
    "split the cost between departments",
    "hide archived records",
    "compare two periods side by side",
    "export the chart as an image",
    "copy the embed snippet",
    "retry failed deliveries",
    "resolve duplicates by email address",
    "lock the record while editing",
    "approve it from your inbox",
    "restrict it to administrators",
    "tag it for the next sprint",
    "upload a spreadsheet template",
    "highlight overdue items in red",
    "sort by priority",
    "share a read-only link",
    "enable the beta toggle",
    "whitelist the callback domain",
    "archive it at the end of the quarter",
    "set the barcode format",
    "print packing slips",
    "reconcile against the bank feed",
    "assign a fallback approver",
    "sign with your stylus",
    "sync it every fifteen minutes",
];

const AUDIENCES: [&str; 12] = [
    "administrators",
    "account owners",
    "finance teams",
    "agents",
    "managers",
    "new teammates",
    "developers",
    "shop owners",
    "recruiters",
    "accountants",
    "marketers",
    "warehouse staff",
];

/// One item of a generated library.
#[derive(Debug, Clone)]
pub(crate) struct LibraryItem {
    pub(crate) kind: ContentKind,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Which object (index into the object list) and verb the name uses,
    /// to reword it into a question that does not contain the name.
    object: usize,
    verb: usize,
    qualifier: usize,
}

impl LibraryItem {
    /// A question that names the item verbatim (in another case and
    /// spacing): the name matcher's case.
    pub(crate) fn named_question(&self, variant: usize) -> String {
        match variant % 4 {
            0 => format!("How do I {}?", self.name.to_lowercase()),
            1 => format!("hi there,  {}  - where is that?", self.name.to_uppercase()),
            2 => format!("Can you show me: {}", self.name),
            _ => format!("I need to {} today, please help", self.name.to_lowercase()),
        }
    }

    /// A question about the item in other words (the object's core words
    /// and the verb apart, the qualifier reworded), so no name occurs in
    /// it: the ranker's case.
    pub(crate) fn reworded_question(&self, rng: &mut Rng) -> String {
        const OPENERS: [&str; 6] = [
            "where do I find",
            "question about",
            "my boss wants",
            "we keep struggling with",
            "is there a way to handle",
            "trouble with",
        ];
        let core = OBJECTS[self.object].1;
        let verb = VERBS[self.verb].to_lowercase();
        let qualifier = QUALIFIERS[self.qualifier].trim().to_lowercase();
        format!(
            "{} {core}, need to {verb} them {qualifier}",
            rng.pick(&OPENERS)
        )
        .trim()
        .to_string()
    }
}

/// `n` items with distinct names: 3 in 5 Flows, the rest Tooltips.
pub(crate) fn library(n: usize, seed: u64) -> Vec<LibraryItem> {
    let mut rng = Rng::new(seed);
    let mut names = HashSet::with_capacity(n);
    let mut items = Vec::with_capacity(n);
    let possible = VERBS.len() * OBJECTS.len() * QUALIFIERS.len();
    while items.len() < n && names.len() < possible {
        let (verb, object, qualifier) = (
            rng.below(VERBS.len()),
            rng.below(OBJECTS.len()),
            rng.below(QUALIFIERS.len()),
        );
        let name = format!(
            "{} {}{}",
            VERBS[verb], OBJECTS[object].0, QUALIFIERS[qualifier]
        );
        if !names.insert(name.to_lowercase()) {
            continue;
        }
        let description = format!(
            "Walks {} through the {} page: {}, {}, and {}.",
            rng.pick(&AUDIENCES),
            rng.pick(&AREAS),
            rng.pick(&DETAILS),
            rng.pick(&DETAILS),
            rng.pick(&DETAILS),
        );
        let kind = if items.len() % 5 < 3 {
            ContentKind::Flow
        } else {
            ContentKind::Tooltip
        };
        items.push(LibraryItem {
            kind,
            name,
            description,
            object,
            verb,
            qualifier,
        });
    }
    items
}

/// Words no generated item uses, for questions nothing should answer.
pub(crate) const UNRELATED: [&str; 24] = [
    "weather",
    "lisbon",
    "tomorrow",
    "pancake",
    "recipe",
    "guitar",
    "chords",
    "volcano",
    "dinosaur",
    "football",
    "poem",
    "ocean",
    "tides",
    "marathon",
    "jazz",
    "piano",
    "knitting",
    "astronomy",
    "giraffe",
    "sushi",
    "origami",
    "tennis",
    "violin",
    "meteor",
];

/// A question of unrelated words and stop words.
pub(crate) fn unrelated_question(rng: &mut Rng) -> String {
    let words: Vec<&str> = (0..3 + rng.below(5))
        .map(|_| rng.pick(&UNRELATED))
        .collect();
    format!("what is the {} about?", words.join(" "))
}

/// A question of exactly `chars` characters rambling over the library's
/// vocabulary (many terms, each in many items: the ranker's worst case).
pub(crate) fn long_question(rng: &mut Rng, chars: usize) -> String {
    let mut text = String::from("Hello, I have been trying all week and nothing works. ");
    while text.len() < chars {
        let sentence = match rng.below(3) {
            0 => format!(
                "When I open the {} page and {}, the {} go missing. ",
                rng.pick(&AREAS),
                rng.pick(&DETAILS),
                OBJECTS[rng.below(OBJECTS.len())].1,
            ),
            1 => format!(
                "Our {} tried to {} {} but could not {}. ",
                rng.pick(&AUDIENCES),
                VERBS[rng.below(VERBS.len())].to_lowercase(),
                OBJECTS[rng.below(OBJECTS.len())].1,
                rng.pick(&DETAILS),
            ),
            _ => format!(
                "Also the {} and the {} look wrong{}. ",
                OBJECTS[rng.below(OBJECTS.len())].1,
                OBJECTS[rng.below(OBJECTS.len())].1,
                QUALIFIERS[rng.below(QUALIFIERS.len())].to_lowercase(),
            ),
        };
        text.push_str(&sentence);
    }
    // ASCII only, so bytes are characters.
    text.truncate(chars);
    text
}
