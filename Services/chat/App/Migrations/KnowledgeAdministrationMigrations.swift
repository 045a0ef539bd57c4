import ServiceCore

/// chat's migrations 70–79: seed 001's knowledge administration.
enum KnowledgeAdministrationMigrations {
    static let all: [Migration] = [
        // What an admin attaches to an upload (seed 001's `metadata` form field): a JSON object.
        Migration(70, "knowledge_document_metadata", ["ALTER TABLE knowledge_documents ADD COLUMN metadata jsonb"])
    ]
}
