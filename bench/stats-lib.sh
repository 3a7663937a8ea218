# Sourced by the bench scripts that report medians (measure.sh, store-ratio.sh,
# store-floor.sh, webhooks.sh, cluster.sh).
#
#   ... | median    # the median of the numbers read, one per line (the mean
#                   # of the two middle ones for an even count)
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
