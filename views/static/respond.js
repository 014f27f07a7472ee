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
        // A draft is saved on every page change, also when the respondent follows a link of the
        // error list: the list of the refused submission stays, and the page stays where they went.
        if (errorListEl.hidden) showErrors(result.body.errors, result.body.error, { move: false });
        else setStatus(result.body.error || texts().fixErrors, true);
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
    clearErrorList();
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

  // Every invalid answer, on whichever page, is marked on its question and
  // listed above the questionnaire with a link that goes to it.
  var errorListEl = document.getElementById('error-list');
  function goTo(question) {
    // focus(true) would look for the survey's first error and could move back to an earlier page.
    // On another page, the question is focused once that page is drawn: before, it has no element to scroll to.
    var focus = function () {
      question.focus(false);
      var element = document.querySelector('[data-name="' + question.name + '"]');
      if (element) element.scrollIntoView({ block: 'start' });
    };
    if (question.page && question.page.isVisible && question.page !== survey.currentPage) {
      var done = false;
      var once = function () {
        if (done) return;
        done = true;
        survey.onAfterRenderPage.remove(once);
        setTimeout(focus, 0);
      };
      survey.onAfterRenderPage.add(once);
      // A jump forward past pages with errors is refused by survey-core unless allowed for the jump.
      survey.validationAllowSwitchPages = true;
      survey.currentPage = question.page;
      survey.validationAllowSwitchPages = false;
      setTimeout(once, 300);
    } else {
      focus();
    }
  }
  function showErrors(errors, message, options) {
    var move = !options || options.move !== false;
    setStatus(message || texts().fixErrors, true);
    var list = errorListEl.querySelector('ul');
    list.textContent = '';
    var first = null;
    Object.keys(errors).forEach(function (name) {
      var question = survey.getQuestionByName(name);
      var item = document.createElement('li');
      if (question) {
        errors[name].forEach(function (text) { question.addError(text); });
        if (!first && question.isVisible) first = question;
        var link = document.createElement('a');
        link.href = '#';
        link.dataset.question = name;
        link.textContent = question.title;
        link.addEventListener('click', function (event) {
          event.preventDefault();
          goTo(question);
        });
        item.appendChild(link);
        item.appendChild(document.createTextNode(': ' + errors[name].join(' ')));
      } else {
        item.textContent = errors[name].join(' ');
      }
      list.appendChild(item);
    });
    errorListEl.hidden = list.children.length === 0;
    if (first && move) goTo(first);
  }
  function clearErrorList() {
    errorListEl.hidden = true;
    errorListEl.querySelector('ul').textContent = '';
  }

  // The counter counts every page of the questionnaire, shown or not, so its
  // total never moves while the respondent answers; pages that do not apply
  // are skipped (the number jumps ahead). It names the section too.
  var pageNames = survey.pages.map(function (page) { return page.name; });
  function sectionOf(pageName) {
    for (var i = 0; i < boot.sections.length; i += 1) {
      if (boot.sections[i].pages.indexOf(pageName) >= 0) return boot.sections[i];
    }
    return null;
  }
  function updateCounter() {
    var page = survey.currentPage;
    if (!page) return;
    var index = pageNames.indexOf(page.name) + 1;
    var total = pageNames.length;
    document.getElementById('page-counter-text').textContent =
      texts().pageCounter.replace('{page}', String(index)).replace('{pages}', String(total));
    var section = sectionOf(page.name);
    document.getElementById('page-counter-section').textContent = section ? '· ' + section.title[language] : '';
    document.getElementById('page-counter-fill').style.width = Math.round((index / total) * 100) + '%';
    // The introduction is read once: on the first page only.
    document.getElementById('survey').classList.toggle('is-later-page', survey.currentPageNo > 0);
  }

  // The page's own texts (header, toolbar, counter) follow the language selector, like the questionnaire.
  function applyLanguage() {
    document.documentElement.lang = language;
    document.title = texts().platformName;
    Array.prototype.forEach.call(document.querySelectorAll('[data-text]'), function (element) {
      var value = texts()[element.getAttribute('data-text')];
      if (value) element.textContent = value;
    });
    updateCounter();
  }

  survey.onCurrentPageChanged.add(function () {
    updateCounter();
    saveDraft(false);
  });
  survey.onCompleting.add(function (_sender, options) {
    // The survey stays on its last page until the server has accepted the answers.
    options.allow = submitted;
    if (!submitted) submitAnswers();
  });

  document.getElementById('save-later').addEventListener('click', function () { saveDraft(true); });
  languageEl.addEventListener('change', function () {
    language = languageEl.value;
    survey.locale = language === 'en' ? '' : language;
    applyLanguage();
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
        updateCounter();
      }, function () {
        setStatus(texts().offline, true);
      });
    });
    showNotice();
  } else {
    showNotice();
    survey.render(document.getElementById('survey'));
    updateCounter();
  }
})();
