import type { Language } from './languages.ts';

/** Texts of the respondent's pages (the questionnaire's own texts live in surveys/). */
const text = {
  platformName: {
    en: 'VET staff mobility survey',
    fr: 'Enquête sur la mobilité du personnel de l’EFP',
    de: 'Umfrage zur Mobilität des Berufsbildungspersonals',
  },
  language: { en: 'Language', fr: 'Langue', de: 'Sprache' },
  saveLater: {
    en: 'Save and continue later',
    fr: 'Enregistrer et continuer plus tard',
    de: 'Speichern und später fortsetzen',
  },
  saved: {
    en: 'Your answers are saved. You can close this page and come back with the same link.',
    fr: 'Vos réponses sont enregistrées. Vous pouvez fermer cette page et revenir avec le même lien.',
    de: 'Ihre Antworten sind gespeichert. Sie können diese Seite schließen und mit demselben Link zurückkehren.',
  },
  offline: {
    en: 'The server cannot be reached. Your answers are kept in this browser and will be sent when the connection is back.',
    fr: 'Le serveur est injoignable. Vos réponses sont conservées dans ce navigateur et seront envoyées dès le retour de la connexion.',
    de: 'Der Server ist nicht erreichbar. Ihre Antworten bleiben in diesem Browser gespeichert und werden gesendet, sobald die Verbindung wieder besteht.',
  },
  submitting: { en: 'Sending your answers…', fr: 'Envoi de vos réponses…', de: 'Ihre Antworten werden gesendet…' },
  fixErrors: {
    en: 'Some answers need your attention; they are marked in the questionnaire.',
    fr: 'Certaines réponses doivent être corrigées ; elles sont signalées dans le questionnaire.',
    de: 'Einige Antworten müssen korrigiert werden; sie sind im Fragebogen markiert.',
  },
  showSubmitted: {
    en: 'Show the submitted answers',
    fr: 'Afficher les réponses envoyées',
    de: 'Übermittelte Antworten anzeigen',
  },
  useMine: {
    en: 'Use the answers on this page',
    fr: 'Utiliser les réponses de cette page',
    de: 'Antworten dieser Seite verwenden',
  },
  thanksTitle: { en: 'Thank you', fr: 'Merci', de: 'Vielen Dank' },
  thanks: {
    en: 'Your answers were received on {date}. They will feed the working group’s evidence on staff mobility.',
    fr: 'Vos réponses ont été reçues le {date}. Elles alimenteront les travaux du groupe de travail sur la mobilité du personnel.',
    de: 'Ihre Antworten sind am {date} eingegangen. Sie fließen in die Auswertung der Arbeitsgruppe zur Personalmobilität ein.',
  },
  correct: {
    en: 'Correct my answers',
    fr: 'Corriger mes réponses',
    de: 'Meine Antworten korrigieren',
  },
  correctHint: {
    en: 'You can correct your answers until {date}; your latest submission counts.',
    fr: 'Vous pouvez corriger vos réponses jusqu’au {date} ; votre dernier envoi est pris en compte.',
    de: 'Sie können Ihre Antworten bis zum {date} korrigieren; Ihre letzte Übermittlung zählt.',
  },
  unknownTitle: { en: 'This link does not work', fr: 'Ce lien ne fonctionne pas', de: 'Dieser Link funktioniert nicht' },
  unknown: {
    en: 'We could not find a questionnaire for this link. Please check that you copied the whole link from your invitation email, or ask the survey coordinator for a new one.',
    fr: 'Aucun questionnaire ne correspond à ce lien. Vérifiez que vous avez copié le lien complet de votre invitation, ou demandez-en un nouveau au coordinateur de l’enquête.',
    de: 'Zu diesem Link gibt es keinen Fragebogen. Bitte prüfen Sie, ob Sie den vollständigen Link aus Ihrer Einladung kopiert haben, oder bitten Sie die Koordination um einen neuen.',
  },
  revokedTitle: { en: 'This link is no longer valid', fr: 'Ce lien n’est plus valable', de: 'Dieser Link ist nicht mehr gültig' },
  revoked: {
    en: 'This personal link has been withdrawn. If you still want to take part, please ask the survey coordinator for a new link.',
    fr: 'Ce lien personnel a été retiré. Si vous souhaitez encore participer, demandez un nouveau lien au coordinateur de l’enquête.',
    de: 'Dieser persönliche Link wurde zurückgezogen. Wenn Sie noch teilnehmen möchten, bitten Sie die Koordination um einen neuen Link.',
  },
  replacedTitle: { en: 'This link has been replaced', fr: 'Ce lien a été remplacé', de: 'Dieser Link wurde ersetzt' },
  replaced: {
    en: 'This personal link has been replaced by a new one. Please use the link from your most recent email; your answers so far are kept. If you have not received it, ask the survey coordinator.',
    fr: 'Ce lien personnel a été remplacé par un nouveau. Utilisez le lien de votre message le plus récent ; vos réponses déjà données sont conservées. Si vous ne l’avez pas reçu, demandez-le au coordinateur de l’enquête.',
    de: 'Dieser persönliche Link wurde durch einen neuen ersetzt. Bitte verwenden Sie den Link aus Ihrer neuesten E-Mail; Ihre bisherigen Antworten bleiben erhalten. Falls Sie ihn nicht erhalten haben, wenden Sie sich an die Koordination.',
  },
  closedTitle: { en: 'This survey is closed', fr: 'Cette enquête est close', de: 'Diese Umfrage ist beendet' },
  closed: {
    en: 'The survey “{campaign}” closed on {date}. Thank you for your interest.',
    fr: 'L’enquête « {campaign} » a pris fin le {date}. Merci de votre intérêt.',
    de: 'Die Umfrage „{campaign}“ wurde am {date} beendet. Vielen Dank für Ihr Interesse.',
  },
  notYetTitle: { en: 'This survey has not opened yet', fr: 'Cette enquête n’est pas encore ouverte', de: 'Diese Umfrage ist noch nicht geöffnet' },
  notYet: {
    en: 'The survey “{campaign}” opens on {date}. Please come back then with the same link.',
    fr: 'L’enquête « {campaign} » ouvre le {date}. Revenez à cette date avec le même lien.',
    de: 'Die Umfrage „{campaign}“ beginnt am {date}. Bitte kommen Sie dann mit demselben Link zurück.',
  },
  tooManyTitle: { en: 'Too many attempts', fr: 'Trop de tentatives', de: 'Zu viele Versuche' },
  tooMany: {
    en: 'Too many links were tried from your connection. Please wait {seconds} seconds and try again.',
    fr: 'Trop de liens ont été essayés depuis votre connexion. Veuillez patienter {seconds} secondes puis réessayer.',
    de: 'Von Ihrer Verbindung wurden zu viele Links versucht. Bitte warten Sie {seconds} Sekunden und versuchen Sie es erneut.',
  },
  tooManyRequests: {
    en: 'Too many requests through this link in a short time. Please wait {seconds} seconds and try again.',
    fr: 'Trop de requêtes par ce lien en peu de temps. Veuillez patienter {seconds} secondes puis réessayer.',
    de: 'Zu viele Anfragen über diesen Link in kurzer Zeit. Bitte warten Sie {seconds} Sekunden und versuchen Sie es erneut.',
  },
  privacyTitle: { en: 'Privacy notice', fr: 'Avis de confidentialité', de: 'Datenschutzhinweis' },
  privacyLink: { en: 'Privacy notice', fr: 'Confidentialité', de: 'Datenschutz' },
  consentLabel: {
    en: 'I have read the privacy notice and agree that my answers are processed as it describes.',
    fr: 'J’ai lu l’avis de confidentialité et j’accepte que mes réponses soient traitées comme il le décrit.',
    de: 'Ich habe den Datenschutzhinweis gelesen und bin einverstanden, dass meine Antworten wie beschrieben verarbeitet werden.',
  },
  consentStart: { en: 'Start the questionnaire', fr: 'Commencer le questionnaire', de: 'Fragebogen beginnen' },
  consentRequired: {
    en: 'Please tick the box to agree before answering.',
    fr: 'Veuillez cocher la case pour donner votre accord avant de répondre.',
    de: 'Bitte setzen Sie das Häkchen, um vor dem Antworten zuzustimmen.',
  },
  consentGiven: {
    en: 'You agreed to the privacy notice on {date}.',
    fr: 'Vous avez accepté l’avis de confidentialité le {date}.',
    de: 'Sie haben dem Datenschutzhinweis am {date} zugestimmt.',
  },
  noScript: {
    en: 'This questionnaire needs JavaScript. Please enable it in your browser.',
    fr: 'Ce questionnaire nécessite JavaScript. Veuillez l’activer dans votre navigateur.',
    de: 'Dieser Fragebogen benötigt JavaScript. Bitte aktivieren Sie es in Ihrem Browser.',
  },
} satisfies Record<string, Record<Language, string>>;

export type PageTextKey = keyof typeof text;

export function pageText(language: Language, values: Record<string, string> = {}): Record<PageTextKey, string> {
  const out = {} as Record<PageTextKey, string>;
  for (const key of Object.keys(text) as PageTextKey[]) {
    out[key] = text[key][language].replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? `{${name}}`);
  }
  return out;
}
