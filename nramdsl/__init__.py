"""nramdsl: a declarative language and compiler for Neural Random-Access Machines."""
