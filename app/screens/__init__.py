"""Modal screens: help, save-as (name prompt + overwrite confirmation), open a saved plan."""
