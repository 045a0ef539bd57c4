import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// Brings billing's ledger in line with a payment as its provider reports it, whoever learnt of it
/// (the charge's own answer, a webhook, the scheduler's reconciliation): the payment row moves only
/// forward (`PaymentStatus.rank`), and the subscription follows through `SubscriptionLedger`.
struct ProviderPaymentApplier: Sendable {
    let ledger: SubscriptionLedger

    enum Outcome: Equatable, Sendable {
        /// The ledger changed.
        case applied
        /// Nothing new: the same or older news, or a payment billing does not know.
        case unchanged
    }

    /// Applies `reported` on `connection` (a transaction); takes the tenant's lock itself.
    func apply(
        _ reported: ProviderPayment, cause: TransitionCause, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Outcome {
        guard let reference = reported.reference.flatMap(PaymentReference.init) else {
            logger.notice("provider payment without billing's reference; ignored", metadata: ["provider_payment_id": "\(reported.id)"])
            return .unchanged
        }
        try await SubscriptionLedger.lockTenant(reference.tenantID, on: connection, logger: logger)
        guard var payment = try await PaymentRecord.locked(reference.paymentID, tenantID: reference.tenantID, on: connection, logger: logger),
            payment.plan == reference.plan
        else {
            logger.notice("provider payment names a payment billing does not have; ignored", metadata: ["provider_payment_id": "\(reported.id)"])
            return .unchanged
        }
        if let known = payment.providerPaymentID, known != reported.id {
            logger.notice("a second provider payment under one reference; ignored", metadata: ["provider_payment_id": "\(reported.id)"])
            return .unchanged
        }
        guard reported.amount == payment.amount else {
            logger.error(
                "provider payment amount differs from the order; not applied",
                metadata: ["provider_payment_id": "\(reported.id)", "reported": "\(reported.amount)", "ordered": "\(payment.amount)"]
            )
            return .unchanged
        }
        let previous = payment.status
        let status = PaymentStatus(reported.status)
        let refunded = reported.refundedAmount?.minorUnits ?? payment.refundedMinorUnits
        let news = status.rank > previous.rank || payment.providerPaymentID == nil || (status == previous && refunded > payment.refundedMinorUnits)
        guard news, status.rank >= previous.rank else { return .unchanged }

        payment.providerPaymentID = reported.id
        payment.status = status
        payment.statusDetail = reported.statusDetail ?? payment.statusDetail
        payment.refundedMinorUnits = min(max(refunded, payment.refundedMinorUnits), payment.amount.minorUnits)
        payment.paymentMethod = reported.paymentMethodID ?? payment.paymentMethod
        if status == .approved, payment.approvedAt == nil { payment.approvedAt = reported.approvedAt ?? now }
        try await connection.query(
            """
            UPDATE payments SET provider_payment_id = \(payment.providerPaymentID), status = \(status.rawValue),
                status_detail = \(payment.statusDetail), refunded_amount = \(payment.refundedMinorUnits),
                payment_method = \(payment.paymentMethod), approved_at = \(payment.approvedAt), processing_until = NULL, updated_at = now()
            WHERE id = \(payment.id)
            """,
            logger: logger
        )

        let subscription = try await ledger.load(reference.tenantID, on: connection, logger: logger)
        if status == .approved, previous != .approved {
            let updated = SubscriptionLedger.activated(subscription, tenantID: reference.tenantID, plan: payment.plan, now: now)
            try await ledger.record(
                .paymentApproved, from: subscription, to: updated, cause: cause, reference: payment.id.uuidString.lowercased(), at: now,
                on: connection, logger: logger
            )
        } else if [.pending, .rejected, .cancelled].contains(status), previous.rank < status.rank, let subscription,
            SubscriptionStateMachine.next(from: subscription.status, on: .paymentNotApproved) != nil
        {
            var updated = subscription
            updated.status = .incomplete
            try await ledger.record(
                .paymentNotApproved, from: subscription, to: updated, cause: cause, reference: payment.id.uuidString.lowercased(), at: now,
                on: connection, logger: logger
            )
        }
        return .applied
    }
}
