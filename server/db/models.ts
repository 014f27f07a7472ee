import type { Connection } from 'mongoose';
import { defineAuditEntryModel } from '../accounts/audit.model.ts';
import { defineAuditChangeModel } from '../accounts/audit-index.ts';
import { definePasswordResetModel } from '../accounts/password-reset.model.ts';
import { defineSetupTokenModel } from '../accounts/setup-token.model.ts';
import { defineUserModel } from '../accounts/user.model.ts';
import { defineCampaignModel } from '../campaigns/campaign.model.ts';
import { defineContactModel } from '../institutions/contact.model.ts';
import { defineImportPreviewModel } from '../institutions/import-preview.model.ts';
import { defineInstitutionModel } from '../institutions/institution.model.ts';
import { defineInvitationModel } from '../invitations/invitation.model.ts';
import { defineLinkCopyModels } from '../invitations/link-copy.store.ts';
import { defineOutboxModels } from '../mail/outbox.model.ts';
import { defineAnalyticRecordModels } from '../evidence/analytic-record.ts';
import { defineInstitutionSecretModel } from '../evidence/institution-tag.ts';
import { defineRecordSnapshotModels } from '../evidence/record-snapshot.ts';
import { defineSentEmailModel } from '../mail/sent-email.store.ts';
import { defineQuoteReviewModel } from '../evidence/quote-review.model.ts';
import { defineQuoteTextModel } from '../evidence/quote-text.ts';
import { definePrivacyModels } from '../privacy/privacy.model.ts';
import { defineReminderRoundModel } from '../reminders/reminder-round.model.ts';
import { defineResponseModels } from '../respond/response.model.ts';
import { defineChangeStampModel } from '../shared/change-stamp.ts';
import { defineContactChangeModel } from '../shared/contact-changes.ts';
import { defineEmailChangeModel } from '../mail/email-changes.ts';
import { defineProgressChangeModel } from '../respond/progress-changes.ts';
import { defineClaimModel } from '../shared/claim.model.ts';
import { defineRateLimitWindowModel } from '../shared/rate-limit-window.model.ts';

/** Every model of the platform, bound to one connection. Services receive this. */
export function defineModels(connection: Connection) {
  return {
    Institution: defineInstitutionModel(connection),
    Contact: defineContactModel(connection),
    Campaign: defineCampaignModel(connection),
    Invitation: defineInvitationModel(connection),
    ...defineLinkCopyModels(connection),
    ...defineResponseModels(connection),
    ...defineAnalyticRecordModels(connection),
    ...defineRecordSnapshotModels(connection),
    ...defineInstitutionSecretModel(connection),
    User: defineUserModel(connection),
    SetupToken: defineSetupTokenModel(connection),
    PasswordReset: definePasswordResetModel(connection),
    AuditEntry: defineAuditEntryModel(connection),
    ...defineAuditChangeModel(connection),
    ImportPreview: defineImportPreviewModel(connection),
    Claim: defineClaimModel(connection),
    ...defineChangeStampModel(connection),
    ...defineContactChangeModel(connection),
    ...defineEmailChangeModel(connection),
    ...defineProgressChangeModel(connection),
    ...defineOutboxModels(connection),
    ...defineSentEmailModel(connection),
    ReminderRound: defineReminderRoundModel(connection),
    RateLimitWindow: defineRateLimitWindowModel(connection),
    QuoteReview: defineQuoteReviewModel(connection),
    ...defineQuoteTextModel(connection),
    ...definePrivacyModels(connection),
  };
}

export type Models = ReturnType<typeof defineModels>;

/**
 * Creates the indexes (unique ones carry invariants, so they must exist before
 * any write). Only plain and unique indexes: FerretDB v1 has no TTL or partial ones.
 */
export async function ensureIndexes(models: Models): Promise<void> {
  for (const model of Object.values(models)) await model.createIndexes();
}
