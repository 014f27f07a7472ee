import type { Language } from '../shared/languages.ts';
import type { EmailKind } from './campaign.model.ts';

/**
 * The platform's default invitation and reminder texts. A campaign starts
 * with these and the coordinator may change them. Placeholders are listed in
 * campaign-email.service.ts; `started` is true in a reminder to a contact who
 * began answering and has not yet submitted.
 */
export const DEFAULT_EMAILS: Record<Language, Record<EmailKind, { subject: string; body: string }>> = {
  en: {
    invitation: {
      subject: 'Your view on staff mobility in VET: {{campaignName}}',
      body: `Dear {{contactName}},

The European working group on transnational learning mobility of VET staff invites {{institutionName}} to take part in its survey. Your answers help VET providers and the European Commission understand what makes staff mobility work, and what stands in its way.

Your personal link (please do not forward it):
{{link}}

You can stop at any time and continue later from the same link. Please answer by {{deadline}}.

Thank you for your time.

If you do not want to receive emails about this survey: {{unsubscribeLink}}`,
    },
    reminder: {
      subject: 'Reminder: {{campaignName}} closes on {{deadline}}',
      body: `Dear {{contactName}},

{{#if started}}Thank you for starting the survey for {{institutionName}}. Your answers so far are saved: you can finish where you left off.{{else}}We have not yet received the answers of {{institutionName}} to the survey on staff mobility in VET. Every provider's view counts.{{/if}}

Your personal link:
{{link}}

The survey closes on {{deadline}}.

If you do not want to receive emails about this survey: {{unsubscribeLink}}`,
    },
  },
  fr: {
    invitation: {
      subject: 'Votre avis sur la mobilité du personnel de l’EFP : {{campaignName}}',
      body: `Bonjour {{contactName}},

Le groupe de travail européen sur la mobilité transnationale du personnel de l’enseignement et de la formation professionnels invite {{institutionName}} à participer à son enquête. Vos réponses aideront les établissements d’EFP et la Commission européenne à comprendre ce qui favorise la mobilité du personnel et ce qui la freine.

Votre lien personnel (merci de ne pas le transférer) :
{{link}}

Vous pouvez vous interrompre à tout moment et reprendre plus tard avec le même lien. Merci de répondre avant le {{deadline}}.

Merci de votre participation.

Pour ne plus recevoir de messages sur cette enquête : {{unsubscribeLink}}`,
    },
    reminder: {
      subject: 'Rappel : {{campaignName}} se termine le {{deadline}}',
      body: `Bonjour {{contactName}},

{{#if started}}Merci d’avoir commencé l’enquête pour {{institutionName}}. Vos réponses sont enregistrées : vous pouvez reprendre là où vous vous étiez arrêté(e).{{else}}Nous n’avons pas encore reçu les réponses de {{institutionName}} à l’enquête sur la mobilité du personnel de l’EFP. L’avis de chaque établissement compte.{{/if}}

Votre lien personnel :
{{link}}

L’enquête se termine le {{deadline}}.

Pour ne plus recevoir de messages sur cette enquête : {{unsubscribeLink}}`,
    },
  },
  de: {
    invitation: {
      subject: 'Ihre Sicht auf die Mobilität des Berufsbildungspersonals: {{campaignName}}',
      body: `Guten Tag {{contactName}},

die europäische Arbeitsgruppe zur grenzüberschreitenden Lernmobilität des Berufsbildungspersonals lädt {{institutionName}} zu ihrer Umfrage ein. Ihre Antworten helfen Berufsbildungseinrichtungen und der Europäischen Kommission zu verstehen, was die Mobilität des Personals fördert und was sie behindert.

Ihr persönlicher Link (bitte nicht weitergeben):
{{link}}

Sie können jederzeit unterbrechen und später über denselben Link weitermachen. Bitte antworten Sie bis zum {{deadline}}.

Vielen Dank für Ihre Zeit.

Wenn Sie keine E-Mails zu dieser Umfrage mehr erhalten möchten: {{unsubscribeLink}}`,
    },
    reminder: {
      subject: 'Erinnerung: {{campaignName}} endet am {{deadline}}',
      body: `Guten Tag {{contactName}},

{{#if started}}Vielen Dank, dass Sie die Umfrage für {{institutionName}} begonnen haben. Ihre bisherigen Antworten sind gespeichert: Sie können dort weitermachen, wo Sie aufgehört haben.{{else}}Wir haben die Antworten von {{institutionName}} zur Umfrage über die Mobilität des Berufsbildungspersonals noch nicht erhalten. Die Sicht jeder Einrichtung zählt.{{/if}}

Ihr persönlicher Link:
{{link}}

Die Umfrage endet am {{deadline}}.

Wenn Sie keine E-Mails zu dieser Umfrage mehr erhalten möchten: {{unsubscribeLink}}`,
    },
  },
};
