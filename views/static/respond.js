// The respondent's questionnaire page: renders the SurveyJS definition the
// server sent, saves progress on every page change and on request, keeps
// answers in this browser while the server cannot be reached, and submits
// idempotently (the server knows which revision this page builds on).
(function () {
  'use strict';
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var statusEl = document.getElementById('status');
  var conflictEl = document.getElementById('conflict');
  var languageEl = document.getElementById('language');
  var base = window.location.pathname.replace(/\/$/, '');
  var storageKey = 'vet-survey:' + boot.csrf.slice(0, 16);
  var language = boot.language;
  var texts = function () { return boot.texts[language]; };

  boot.customProperties.forEach(function (property) {
    if (!Survey.Serializer.findProperty('question', property.name)) {
      Survey.Serializer.addProperty('question', property);
    }
  });

  var survey = new Survey.Model(boot.json);
  survey.locale = language === 'en' ? '' : language;
  survey.data = boot.data;
  var pending = readPending();
  if (pending && pending.baseRevision === boot.revision && pending.savedAt > (boot.serverSavedAt || 0)) {
    // Answers given while offline, newer than what the server has.
    survey.data = pending.data;
    survey.currentPageNo = pending.pageNo || 0;
  } else if (boot.pageNo > 0 && boot.pageNo < survey.visiblePages.length) {
    survey.currentPageNo = boot.pageNo;
  }

  function setStatus(message, isError) {
    statusEl.textContent = message || '';
    statusEl.classList.toggle('is-error', !!isError);
  }

  function readPending() {
    try { return JSON.parse(window.localStorage.getItem(storageKey) || 'null'); } catch (e) { return null; }
  }
  function writePending(entry) {
    try { window.localStorage.setItem(storageKey, JSON.stringify(entry)); } catch (e) { /* private mode: nothing to keep */ }
  }
  function clearPending() {
    try { window.localStorage.removeItem(storageKey); } catch (e) { /* ignore */ }
  }

  function send(method, path, body) {
    return fetch(base + path, {
      method: method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': boot.csrf },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (payload) {
        return { status: response.status, body: payload };
      });
    });
  }

  function draftBody() {
    return { data: survey.data, pageNo: survey.currentPageNo, baseRevision: boot.revision, language: language };
  }

  var saving = null;
  function saveDraft(announce) {
    var body = draftBody();
    writePending({ kind: 'draft', data: body.data, pageNo: body.pageNo, baseRevision: body.baseRevision, savedAt: Date.now() });
    saving = send('PUT', '/draft', body).then(function (result) {
      if (result.status === 200) {
        clearPending();
        if (announce) setStatus(texts().saved);
        else setStatus('');
      } else if (result.status === 409 && result.body.conflict) {
        showConflict(result.body, function () { saveDraft(true); });
      } else if (result.status === 422 && result.body.errors) {
        clearPending();
        showErrors(result.body.errors, result.body.error);
      } else if (result.status >= 500) {
        setStatus(texts().offline, true);
      } else {
        setStatus(result.body.error || texts().offline, true);
      }
    }, function () {
      setStatus(texts().offline, true);
    });
    return saving;
  }

  var submitted = false;
  function submitAnswers() {
    setStatus(texts().submitting);
    var body = { data: survey.data, baseRevision: boot.revision, language: language };
    writePending({ kind: 'submit', data: body.data, pageNo: survey.currentPageNo, baseRevision: boot.revision, savedAt: Date.now() });
    return send('POST', '/submit', body).then(function (result) {
      if (result.status === 200 || result.status === 201) {
        clearPending();
        submitted = true;
        window.location.replace(base);
        return;
      }
      if (result.status === 422 && result.body.errors) {
        clearPending();
        showErrors(result.body.errors);
        return;
      }
      if (result.status === 409 && result.body.conflict) {
        showConflict(result.body, submitAnswers);
        return;
      }
      if (result.status >= 500) throw new Error('server');
      setStatus(result.body.error || texts().offline, true);
    }).catch(function () {
      setStatus(texts().offline, true);
    });
  }

  // Newer answers were submitted from another window or device. This page's
  // answers are neither sent nor dropped: the respondent either looks at the
  // submitted ones, or sends (or keeps saving) this page's answers on top of
  // the latest revision.
  function showConflict(body, retry) {
    setStatus(body.error, true);
    conflictEl.hidden = false;
    document.getElementById('show-submitted').onclick = function () {
      window.location.assign(base + '?edit=1');
    };
    document.getElementById('use-mine').onclick = function () {
      conflictEl.hidden = true;
      boot.revision = body.latestRevision;
      retry();
    };
  }

  function showErrors(errors, message) {
    setStatus(message || texts().fixErrors, true);
    var first = null;
    Object.keys(errors).forEach(function (name) {
      var question = survey.getQuestionByName(name);
      if (!question) return;
      errors[name].forEach(function (message) { question.addError(message); });
      if (!first) first = question;
    });
    if (first && first.page) {
      survey.currentPage = first.page;
      first.focus(true);
    }
  }

  survey.onCurrentPageChanged.add(function () { saveDraft(false); });
  survey.onCompleting.add(function (_sender, options) {
    // The survey stays on its last page until the server has accepted the answers.
    options.allow = submitted;
    if (!submitted) submitAnswers();
  });

  document.getElementById('save-later').addEventListener('click', function () { saveDraft(true); });
  languageEl.addEventListener('change', function () {
    language = languageEl.value;
    survey.locale = language === 'en' ? '' : language;
    document.documentElement.lang = language;
    document.getElementById('show-submitted').textContent = texts().showSubmitted;
    document.getElementById('use-mine').textContent = texts().useMine;
    saveDraft(false);
  });

  // Send what was kept in the browser as soon as the connection is back.
  function flushPending() {
    var entry = readPending();
    if (!entry || entry.baseRevision !== boot.revision) return;
    if (entry.kind === 'submit') submitAnswers();
    else saveDraft(false);
  }
  window.addEventListener('online', flushPending);
  setInterval(function () { if (readPending()) flushPending(); }, 20000);
  if (pending && pending.baseRevision === boot.revision) flushPending();

  // The privacy notice: shown above the first page, linked on every page; where
  // the campaign rests on consent, the questionnaire appears only once the
  // respondent has ticked the box and the server has recorded the consent.
  var noticeEl = document.getElementById('privacy-notice');
  var consentForm = document.getElementById('consent-form');
  function showNotice() {
    var notice = boot.privacy.notices[language];
    if (notice) {
      document.getElementById('privacy-text').textContent = notice.text;
      document.getElementById('privacy-link').href = notice.url;
    }
    document.getElementById('privacy-heading').textContent = texts().privacyTitle;
    document.getElementById('privacy-link').textContent = texts().privacyLink;
    if (consentForm) {
      document.getElementById('consent-label').textContent = texts().consentLabel;
      document.getElementById('consent-start').textContent = texts().consentStart;
    }
    noticeEl.hidden = !!consentForm ? false : survey.currentPageNo > 0;
  }
  survey.onCurrentPageChanged.add(showNotice);
  languageEl.addEventListener('change', showNotice);

  // Exposed for the page's own browser tests and for debugging in the console.
  window.vetSurvey = survey;
  if (boot.privacy.consentRequired && consentForm) {
    consentForm.addEventListener('submit', function (event) {
      event.preventDefault();
      if (!document.getElementById('consent').checked) {
        setStatus(texts().consentRequired, true);
        return;
      }
      var notice = boot.privacy.notices[language];
      send('POST', '/consent', { version: notice.version, language: language }).then(function (result) {
        if (result.status !== 201) {
          setStatus(result.body.error || texts().offline, true);
          return;
        }
        setStatus('');
        consentForm.remove();
        consentForm = null;
        boot.privacy.consentRequired = false;
        showNotice();
        survey.render(document.getElementById('survey'));
      }, function () {
        setStatus(texts().offline, true);
      });
    });
    showNotice();
  } else {
    showNotice();
    survey.render(document.getElementById('survey'));
  }
})();
