import { createHash } from 'node:crypto';
import type { Language } from '../shared/languages.ts';

/** The lawful bases (GDPR Art. 6(1)) a campaign may rest on. */
export const LAWFUL_BASES = ['consent', 'public-task', 'legitimate-interest'] as const;
export type LawfulBasis = (typeof LAWFUL_BASES)[number];

export const LAWFUL_BASIS_NAMES: Record<LawfulBasis, string> = {
  consent: 'Consent (Art. 6(1)(a)): the respondent must agree before answering',
  'public-task': 'Public task (Art. 6(1)(e))',
  'legitimate-interest': 'Legitimate interests (Art. 6(1)(f))',
};

/** Months after the close date before a campaign's personal data is purged, unless the coordinator sets another. */
export const DEFAULT_RETENTION_MONTHS = 24;

interface NoticeCampaign {
  name: string;
  senderName?: string | null;
  replyTo?: string | null;
  lawfulBasis?: string | null;
  retentionMonths?: number | null;
  privacyNotices?: ReadonlyArray<{ language: string; text: string }> | null;
}

const BASIS_TEXT: Record<Language, Record<LawfulBasis, string>> = {
  en: {
    consent: 'your consent (GDPR Art. 6(1)(a)), which you give before answering and may withdraw at any time by writing to us; withdrawing does not affect what was done before',
    'public-task': 'a task carried out in the public interest (GDPR Art. 6(1)(e)): the study of VET staff mobility for the European Commission',
    'legitimate-interest': 'our legitimate interest (GDPR Art. 6(1)(f)) in studying VET staff mobility; you may object at any time',
  },
  fr: {
    consent: 'votre consentement (RGPD art. 6(1)(a)), donné avant de répondre et que vous pouvez retirer à tout moment en nous écrivant ; le retrait ne remet pas en cause ce qui a été fait auparavant',
    'public-task': 'une mission d’intérêt public (RGPD art. 6(1)(e)) : l’étude de la mobilité du personnel de l’EFP pour la Commission européenne',
    'legitimate-interest': 'notre intérêt légitime (RGPD art. 6(1)(f)) à étudier la mobilité du personnel de l’EFP ; vous pouvez vous y opposer à tout moment',
  },
  de: {
    consent: 'Ihre Einwilligung (DSGVO Art. 6 Abs. 1 lit. a), die Sie vor dem Antworten geben und jederzeit durch eine Nachricht an uns widerrufen können; der Widerruf berührt nicht, was vorher geschah',
    'public-task': 'eine Aufgabe im öffentlichen Interesse (DSGVO Art. 6 Abs. 1 lit. e): die Untersuchung der Mobilität des Berufsbildungspersonals für die Europäische Kommission',
    'legitimate-interest': 'unser berechtigtes Interesse (DSGVO Art. 6 Abs. 1 lit. f) an der Untersuchung der Mobilität des Berufsbildungspersonals; Sie können jederzeit widersprechen',
  },
};

/** Who the controller is and where to write, in the notice's own language, when the campaign names no sender or reply-to address. */
const UNNAMED: Record<Language, { controller: string; contact: string }> = {
  en: { controller: 'The European working group on VET staff mobility', contact: 'the address that sent you the invitation' },
  fr: { controller: 'Le groupe de travail européen sur la mobilité du personnel de l’EFP', contact: 'l’adresse qui vous a envoyé l’invitation' },
  de: { controller: 'Die europäische Arbeitsgruppe zur Mobilität des Berufsbildungspersonals', contact: 'die Adresse, von der Sie die Einladung erhalten haben' },
};

/**
 * The platform's default notice for a campaign in one language: who the
 * controller is, the purpose, the basis, retention, recipients and the rights
 * (rectification included: contact details through the coordinator, answers
 * through the personal link while the campaign is open).
 */
export function defaultNotice(campaign: NoticeCampaign, language: Language): string {
  const controller = campaign.senderName?.trim() || UNNAMED[language].controller;
  const contact = campaign.replyTo?.trim() || UNNAMED[language].contact;
  const basis = BASIS_TEXT[language][(campaign.lawfulBasis as LawfulBasis) ?? 'legitimate-interest'] ?? BASIS_TEXT[language]['legitimate-interest'];
  const months = campaign.retentionMonths ?? DEFAULT_RETENTION_MONTHS;
  switch (language) {
    case 'fr':
      return `Responsable du traitement : ${controller} (contact : ${contact}).
Finalité : l’enquête « ${campaign.name} » sur la mobilité transnationale du personnel de l’EFP ; les réponses alimentent des indicateurs agrégés.
Base juridique : ${basis}.
Données : votre nom, votre adresse électronique professionnelle, votre établissement, vos réponses et les courriels que nous vous envoyons.
Destinataires : les coordinateurs de l’enquête ; le groupe de travail ne voit que des résultats agrégés, sans noms, les petits groupes étant masqués.
Conservation : vos coordonnées, brouillons, courriels et liens personnels sont effacés ${months} mois après la clôture de l’enquête ; les réponses fermées restent ensuite comme un enregistrement anonyme.
Vos droits : accès, rectification, effacement, limitation et opposition, en écrivant à ${contact}. Vous pouvez corriger vos réponses avec votre lien personnel tant que l’enquête est ouverte ; le coordinateur corrige vos coordonnées sur demande. Vous pouvez aussi saisir l’autorité de protection des données de votre pays.`;
    case 'de':
      return `Verantwortlicher: ${controller} (Kontakt: ${contact}).
Zweck: die Umfrage „${campaign.name}“ zur grenzüberschreitenden Mobilität des Berufsbildungspersonals; die Antworten fließen in zusammengefasste Indikatoren ein.
Rechtsgrundlage: ${basis}.
Daten: Ihr Name, Ihre dienstliche E-Mail-Adresse, Ihre Einrichtung, Ihre Antworten und die E-Mails, die wir Ihnen senden.
Empfänger: die Koordinatoren der Umfrage; die Arbeitsgruppe sieht nur zusammengefasste Ergebnisse ohne Namen, kleine Gruppen werden unterdrückt.
Speicherdauer: Ihre Kontaktdaten, Entwürfe, E-Mails und persönlichen Links werden ${months} Monate nach dem Ende der Umfrage gelöscht; geschlossene Antworten bleiben danach als anonymer Datensatz.
Ihre Rechte: Auskunft, Berichtigung, Löschung, Einschränkung und Widerspruch, per Nachricht an ${contact}. Ihre Antworten können Sie mit Ihrem persönlichen Link berichtigen, solange die Umfrage offen ist; Ihre Kontaktdaten berichtigt der Koordinator auf Anfrage. Sie können sich auch bei der Datenschutzaufsichtsbehörde Ihres Landes beschweren.`;
    default:
      return `Controller: ${controller} (contact: ${contact}).
Purpose: the survey "${campaign.name}" on transnational mobility of VET staff; the answers feed aggregate indicators.
Legal basis: ${basis}.
Data: your name, your work email address, your institution, your answers and the emails we send you.
Recipients: the survey's coordinators; the working group sees aggregate results only, without names, with small groups suppressed.
Retention: your contact details, drafts, emails and personal links are erased ${months} months after the survey closes; closed answers then stay as an anonymous record.
Your rights: access, rectification, erasure, restriction and objection, by writing to ${contact}. You can correct your answers through your personal link while the survey is open; the coordinator corrects your contact details on request. You may also complain to the data-protection authority of your country.`;
  }
}

/** The notice a respondent reads in a language, and its version (a hash of its text): consent names the version it was given to. */
export function noticeFor(campaign: NoticeCampaign, language: Language): { text: string; version: string; custom: boolean } {
  const own = campaign.privacyNotices?.find((n) => n.language === language && n.text.trim());
  const text = own ? own.text : defaultNotice(campaign, language);
  return { text, version: createHash('sha256').update(text).digest('hex').slice(0, 16), custom: Boolean(own) };
}

export function requiresConsent(campaign: { lawfulBasis?: string | null }): boolean {
  return campaign.lawfulBasis === 'consent';
}
