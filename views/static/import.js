// Reads the chosen CSV file in the browser and puts its text into the form,
// so the upload is an ordinary form post (no multipart parsing on the server).
(function () {
  var input = document.getElementById('import-file');
  var text = document.getElementById('import-text');
  var fileName = document.getElementById('import-file-name');
  var status = document.getElementById('import-status');
  if (!input || !text) return;
  var maxBytes = Number(input.getAttribute('data-max-bytes')) * 1024 * 1024;
  input.addEventListener('change', function () {
    var file = input.files && input.files[0];
    status.classList.remove('is-error');
    if (!file) return;
    if (file.size > maxBytes) {
      status.textContent = 'The file is larger than ' + input.getAttribute('data-max-bytes') + ' MB. Please split it into several files.';
      status.classList.add('is-error');
      input.value = '';
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      text.value = String(reader.result);
      fileName.value = file.name;
      status.textContent = file.name + ' read: ' + text.value.split(/\r?\n/).length + ' lines. Press "Show the preview".';
    };
    reader.onerror = function () {
      status.textContent = 'The file could not be read.';
      status.classList.add('is-error');
    };
    reader.readAsText(file, 'utf-8');
  });
})();
