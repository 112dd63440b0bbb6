"""Decision policies and planners: the rules (`policies`), the trained agent (`rl`, its plays in
`evaluate`), the exact planner (`cpsat`), every one by name (`registry`), a planned run of a week
(`run`), and several planners on one week (`compare`)."""
