"""An academic's publications: added by hand or pasted as BibTeX."""
