import Logging
import PostgresNIO

/// The migrations of ``PostgresJobStore``'s tables, applied in order and recorded in `hb_schema_version`.
///
/// Idempotent and safe when several workers start at once: the whole migration runs in one transaction under a
/// transaction-scoped advisory lock keyed on the current schema, so concurrent starters wait for the first one and
/// then find every version applied.
enum PostgresJobStoreSchema {
    /// Every migration, by version (ascending). Never edit an applied one; append.
    static let migrations: [(version: Int, sql: String)] = [
        (1, """
            CREATE TABLE hb_job (
                id text PRIMARY KEY,
                provider text NOT NULL,
                tenant text NOT NULL,
                max_attempts integer NOT NULL,
                label text,
                state text NOT NULL,
                created_at timestamptz NOT NULL,
                finished_at timestamptz
            );
            CREATE TABLE hb_request (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                job_id text NOT NULL REFERENCES hb_job(id),
                custom_id text NOT NULL,
                provider text NOT NULL,
                endpoint text NOT NULL,
                model text NOT NULL,
                tenant text NOT NULL,
                body bytea NOT NULL,
                encoded_size integer NOT NULL,
                app_reference text,
                state text NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                last_error text,
                batch_id bigint,
                updated_at timestamptz NOT NULL,
                UNIQUE (job_id, custom_id)
            );
            CREATE INDEX hb_request_by_state ON hb_request (job_id, state, provider, endpoint, model, tenant, id);
            CREATE INDEX hb_request_by_batch ON hb_request (batch_id, custom_id);
            CREATE TABLE hb_response (
                request_id bigint PRIMARY KEY,
                body bytea NOT NULL,
                input_tokens integer,
                output_tokens integer
            );
            CREATE TABLE hb_batch (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                job_id text NOT NULL REFERENCES hb_job(id),
                provider text NOT NULL,
                endpoint text NOT NULL,
                model text NOT NULL,
                tenant text NOT NULL,
                state text NOT NULL,
                idempotency_tag text NOT NULL UNIQUE,
                request_count integer NOT NULL,
                byte_count bigint NOT NULL,
                input_file_id text,
                provider_batch_id text,
                outcome text,
                counts text,
                output_file_id text,
                error_file_id text,
                results_url text,
                created_at timestamptz NOT NULL,
                submitted_at timestamptz,
                ended_at timestamptz,
                reconciled_at timestamptz,
                last_polled_at timestamptz,
                claimed_by text NOT NULL,
                lease_owner text,
                lease_expires_at timestamptz,
                lease_takeovers integer NOT NULL DEFAULT 0
            );
            CREATE INDEX hb_batch_by_state ON hb_batch (state, id);
            CREATE INDEX hb_batch_by_owner ON hb_batch (lease_owner) WHERE state IN ('building','uploading','submitted','ended');
            CREATE TABLE hb_outcome (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                request_id bigint NOT NULL,
                job_id text NOT NULL,
                created_at timestamptz NOT NULL
            );
            CREATE INDEX hb_outcome_by_job ON hb_outcome (job_id, seq);
            CREATE TABLE hb_checkpoint (
                consumer text PRIMARY KEY,
                seq bigint NOT NULL
            );
            CREATE TABLE hb_worker (
                id text PRIMARY KEY,
                started_at timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL
            );
            """),
    ]

    /// Applies the missing migrations; returns the versions applied by this call.
    @discardableResult
    static func migrate(_ client: PostgresClient, logger: Logger) async throws -> [Int] {
        try await PostgresTransaction.run(client, logger: logger) { connection in
            try await connection.guardedQuery(
                "SELECT pg_advisory_xact_lock(hashtext('hyperbatch.jobs.migrate:' || current_schema()))", logger: logger)
            try await connection.guardedQuery(
                "CREATE TABLE IF NOT EXISTS hb_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var applied: Set<Int> = []
            for try await version in try await connection.guardedQuery("SELECT version FROM hb_schema_version", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                // Migration bodies are constant SQL in this file (no input), so unsafeSQL is safe here. The extended
                // protocol takes one statement per query, hence the split (no statement contains a `;` of its own).
                for statement in migration.sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try await connection.guardedQuery(PostgresQuery(unsafeSQL: String(statement)), logger: logger)
                }
                try await connection.guardedQuery("INSERT INTO hb_schema_version (version) VALUES (\(migration.version))", logger: logger)
                logger.info("applied job store migration", metadata: ["version": "\(migration.version)"])
                done.append(migration.version)
            }
            return done
        }
    }
}

/// One transaction on a pooled connection: `BEGIN`, the body, `COMMIT`; `ROLLBACK` and the body's own error when it
/// throws (unlike `withTransaction`, which wraps the error, so callers can still match `JobStoreError`). Every statement
/// goes through `guardedQuery`, so a connection the server closed fails the call instead of hanging it.
enum PostgresTransaction {
    static func run<T: Sendable>(
        _ client: PostgresClient, logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await client.withConnection { connection in
            try await connection.guardedQuery("BEGIN", logger: logger)
            let value: T
            do {
                value = try await body(connection)
            } catch {
                // A closed connection needs no ROLLBACK: the server rolled the transaction back when it closed.
                if !connection.isClosed { _ = try? await connection.guardedQuery("ROLLBACK", logger: logger) }
                throw error
            }
            try await connection.guardedQuery("COMMIT", logger: logger)
            return value
        }
    }
}
