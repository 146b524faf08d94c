// Page logic for the demo "Acme Projects" app: the projects table (edit dialog,
// row selection, bulk edit) and the settings form. No network calls: edits only
// change the DOM; the point of the demo is the PostHog activity they produce.

const PRIORITIES = ['Low', 'Medium', 'High', 'Urgent'];

function showToast(text) {
  const toast = document.getElementById('toast');
  if (!toast) return;
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => {
    toast.hidden = true;
  }, 2600);
}

function setPriority(row, priority) {
  const pill = row.querySelector('[data-field="priority"]');
  if (!pill || !PRIORITIES.includes(priority)) return;
  pill.textContent = priority;
  pill.className = `pill priority-${priority.toLowerCase()}`;
}

function flash(row) {
  row.classList.remove('flash');
  // Restart the animation on repeated edits.
  void row.offsetWidth;
  row.classList.add('flash');
}

/**
 * A <dialog> opened non-modally over our own backdrop, so the copilot widget
 * stays usable while it is open (a modal dialog would make the widget inert).
 */
function dialogController(dialog, backdrop) {
  let returnFocus = null;
  const close = () => {
    if (!dialog.open) return;
    dialog.close();
    backdrop.hidden = true;
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    returnFocus = null;
  };
  const open = (opener, firstField) => {
    returnFocus = opener || null;
    backdrop.hidden = false;
    dialog.show();
    if (firstField) {
      firstField.focus();
      if (typeof firstField.select === 'function') firstField.select();
    }
  };
  dialog.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    }
  });
  dialog.querySelectorAll('[data-action="cancel"]').forEach((btn) => btn.addEventListener('click', close));
  return { open, close };
}

function initProjects() {
  const table = document.getElementById('projects-table');
  if (!table) return;
  const backdrop = document.getElementById('dialog-backdrop');
  const editDialog = document.getElementById('edit-dialog');
  const editForm = document.getElementById('edit-project');
  const bulkDialog = document.getElementById('bulk-dialog');
  const bulkForm = document.getElementById('bulk-edit');
  const bulkButton = document.getElementById('bulk-edit-button');
  const selectAll = document.getElementById('select-all');
  const countLabel = document.getElementById('selection-count');
  const bulkSummary = document.getElementById('bulk-summary');

  const edit = dialogController(editDialog, backdrop);
  const bulk = dialogController(bulkDialog, backdrop);
  backdrop.addEventListener('click', () => {
    edit.close();
    bulk.close();
  });

  const rows = () => Array.from(table.tBodies[0].rows);
  const selectedRows = () => rows().filter((row) => row.querySelector('.row-check').checked);

  // ---- single-row edit ----
  let editing = null;
  table.addEventListener('click', (event) => {
    const button = event.target.closest('.edit-button');
    if (!button) return;
    editing = button.closest('tr');
    editForm.elements.name.value = editing.querySelector('.project-name').textContent.trim();
    editForm.elements.priority.value = editing.querySelector('[data-field="priority"]').textContent.trim();
    edit.open(button, editForm.elements.name);
  });
  editForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!editing) return;
    const name = editForm.elements.name.value.trim();
    if (!name) {
      editForm.elements.name.focus();
      return;
    }
    const row = editing;
    row.querySelector('.project-name').textContent = name;
    row.querySelector('.row-check').setAttribute('aria-label', `Select ${name}`);
    setPriority(row, editForm.elements.priority.value);
    editing = null;
    edit.close();
    flash(row);
    showToast(`Saved “${name}”`);
  });

  // ---- selection and bulk edit ----
  const updateSelection = () => {
    const count = selectedRows().length;
    const total = rows().length;
    // Disabled rather than hidden, so the copilot can point at it ("Show me
    // bulk edit") before anything is ticked.
    bulkButton.disabled = count === 0;
    countLabel.textContent = count === 0 ? '' : `${count} selected`;
    selectAll.checked = count > 0 && count === total;
    selectAll.indeterminate = count > 0 && count < total;
    rows().forEach((row) => row.classList.toggle('selected', row.querySelector('.row-check').checked));
  };
  table.addEventListener('change', (event) => {
    if (event.target === selectAll) {
      rows().forEach((row) => {
        row.querySelector('.row-check').checked = selectAll.checked;
      });
    }
    if (event.target.matches('input[type="checkbox"]')) updateSelection();
  });
  bulkButton.addEventListener('click', () => {
    const count = selectedRows().length;
    if (count === 0) return;
    bulkSummary.textContent = `Set the priority of ${count} selected project${count === 1 ? '' : 's'}.`;
    bulk.open(bulkButton, bulkForm.elements.bulk_priority);
  });
  bulkForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const priority = bulkForm.elements.bulk_priority.value;
    const chosen = selectedRows();
    chosen.forEach((row) => {
      setPriority(row, priority);
      row.querySelector('.row-check').checked = false;
      flash(row);
    });
    updateSelection();
    bulk.close();
    bulkButton.disabled ? selectAll.focus() : bulkButton.focus();
    showToast(`Set ${chosen.length} project${chosen.length === 1 ? '' : 's'} to ${priority}`);
  });
  updateSelection();
}

function initSettings() {
  const form = document.getElementById('settings-form');
  if (!form) return;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    showToast('Settings saved');
  });
}

export function initApp() {
  initProjects();
  initSettings();
}
