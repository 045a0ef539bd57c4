/// The widget's attachment settings of a tenant's theme (seed 000's `attachments_*`), which chat
/// applies to attachment uploads. tenancy's `GET /internal/tenants/{id}/theme` answers the whole
/// resolved theme (defaults filled in); these are the fields chat reads of it.
package struct WidgetAttachmentSettings: Codable, Sendable, Equatable {
    /// Whether the widget takes attachments at all (off by default).
    package var attachmentsEnabled: Bool
    /// How many files the widget's composer attaches to one message (the widget applies it: a
    /// message does not name its attachments).
    package var attachmentsMaxCount: Int
    /// Bytes per attachment.
    package var attachmentsMaxSize: Int

    package init(attachmentsEnabled: Bool, attachmentsMaxCount: Int, attachmentsMaxSize: Int) {
        self.attachmentsEnabled = attachmentsEnabled
        self.attachmentsMaxCount = attachmentsMaxCount
        self.attachmentsMaxSize = attachmentsMaxSize
    }
}
