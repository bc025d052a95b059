import GRDB

/// The migrations of ``SQLiteJobStore``'s tables (`hb_job`, `hb_request`, `hb_batch`, `hb_outcome`, `hb_checkpoint`).
enum SQLiteJobStoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("hb-jobs-v1") { db in
            try db.execute(sql: """
                CREATE TABLE hb_job (
                    id TEXT PRIMARY KEY NOT NULL,
                    provider TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    label TEXT,
                    state TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    finished_at REAL
                );
                CREATE TABLE hb_request (
                    id INTEGER PRIMARY KEY,
                    job_id TEXT NOT NULL REFERENCES hb_job(id),
                    custom_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    model TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    body BLOB NOT NULL,
                    encoded_size INTEGER NOT NULL,
                    app_reference TEXT,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    batch_id INTEGER,
                    updated_at REAL NOT NULL,
                    UNIQUE (job_id, custom_id)
                );
                CREATE INDEX hb_request_by_state ON hb_request (job_id, state, provider, endpoint, model, tenant, id);
                CREATE INDEX hb_request_by_batch ON hb_request (batch_id, custom_id);
                CREATE TABLE hb_response (
                    request_id INTEGER PRIMARY KEY,
                    body BLOB NOT NULL,
                    input_tokens INTEGER,
                    output_tokens INTEGER
                );
                CREATE TABLE hb_batch (
                    id INTEGER PRIMARY KEY,
                    job_id TEXT NOT NULL REFERENCES hb_job(id),
                    provider TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    model TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    state TEXT NOT NULL,
                    idempotency_tag TEXT NOT NULL UNIQUE,
                    request_count INTEGER NOT NULL,
                    byte_count INTEGER NOT NULL,
                    input_file_id TEXT,
                    provider_batch_id TEXT,
                    outcome TEXT,
                    counts TEXT,
                    output_file_id TEXT,
                    error_file_id TEXT,
                    results_url TEXT,
                    created_at REAL NOT NULL,
                    submitted_at REAL,
                    ended_at REAL,
                    reconciled_at REAL,
                    last_polled_at REAL
                );
                CREATE INDEX hb_batch_by_state ON hb_batch (state, id);
                CREATE TABLE hb_outcome (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    request_id INTEGER NOT NULL,
                    job_id TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE INDEX hb_outcome_by_job ON hb_outcome (job_id, seq);
                CREATE TABLE hb_checkpoint (
                    consumer TEXT PRIMARY KEY NOT NULL,
                    seq INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }
}
