import HyperbatchJobs
import PostgresNIO

/// Sorts errors of a ``PostgresJobStore`` into transient (retry the pass) and permanent (stop the worker).
///
/// Transient: lost or refused connections (PSQLError connection, closed-connection and unclean-shutdown codes, and
/// ``PostgresJobStoreError/Code/connectionClosed``, a failed connection check marked transient), SQLSTATE class 08 (connection exception), 40001 serialization
/// failure, 40P01 deadlock, 55P03 lock not available, 57014 statement timeout, 57P01/57P02/57P03 server shutting down
/// or starting, 53300 too many connections.
/// Everything else is permanent, in particular ``PostgresJobStoreError/Code/leaseLost``, ``JobStoreError`` and a
/// closed pool.
public enum PostgresStoreErrors {
    /// SQLSTATE codes worth a retry (besides class 08).
    public static let transientSQLStates: Set<String> = ["40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"]

    /// The kind of `error`.
    @Sendable public static func classify(_ error: any Error) -> StoreErrorKind {
        if let error = error as? PostgresJobStoreError { return error.code == .connectionClosed ? .transient : .permanent }
        if let error = error as? PostgresStoreURLError { return error.isTransient ? .transient : .permanent }
        guard let error = error as? PSQLError else { return .permanent }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return .transient
        case .server:
            guard let state = error.serverInfo?[.sqlState] else { return .permanent }
            return state.hasPrefix("08") || transientSQLStates.contains(state) ? .transient : .permanent
        default:
            return .permanent
        }
    }

    /// A retry policy for PostgreSQL stores: ``classify(_:)`` with the given backoff.
    public static func retryPolicy(
        initialDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(30), maximumAttempts: Int? = nil
    ) -> StoreRetryPolicy {
        StoreRetryPolicy(initialDelay: initialDelay, maximumDelay: maximumDelay, maximumAttempts: maximumAttempts, classify: classify)
    }
}
