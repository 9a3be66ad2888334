// The demo page's own script (served as /demo.js, so the page's policy
// needs no inline script). It queues commands for the widget before the
// widget's script has loaded, as the widget's contract allows.
(function () {
  'use strict';

  window.chatdesk = window.chatdesk || function () {
    (window.chatdesk.q = window.chatdesk.q || []).push(arguments);
  };

  function show(id, text) {
    var element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  var heard = false;

  window.chatdesk('on', 'ready', function (event) {
    heard = true;
    if (event && event.enabled) {
      show('ready', 'The widget is on: open the chat in the corner of the page.');
    } else {
      show('ready', 'The widget stays closed for this site: ' +
        ((event && event.reason) || 'no reason given') + '.');
    }
  });

  window.chatdesk('on', 'content', function (item) {
    var kind = item && item.kind === 'TOOLTIP' ? 'Tooltip' : 'Flow';
    var name = (item && item.name) || '(unnamed)';
    show('guide', 'The ' + kind + ' "' + name + '" would start now.');
    var list = document.getElementById('guides');
    if (list) {
      var entry = document.createElement('li');
      entry.textContent = new Date().toLocaleTimeString() + ': ' + kind + ' "' + name +
        '" (id ' + ((item && item.id) || '?') + ')';
      list.insertBefore(entry, list.firstChild);
    }
  });

  // The widget says nothing when chatdesk cannot be reached.
  window.setTimeout(function () {
    if (!heard) {
      show('ready', 'No answer from the widget yet: is chatdesk still running?');
    }
  }, 8000);
})();
