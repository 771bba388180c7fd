//! English and Swedish for every text of the panels, switchable at run time ([`Lang`]).
//! Texts are looked up by their English wording; a text missing from the table shows in
//! English (and a test checks the table covers what the panels use).

use bevy::prelude::*;

/// The language of the panels.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    English,
    Swedish,
}

/// (English, Swedish).
pub const TEXTS: &[(&str, &str)] = &[
    ("Stockholm digital twin", "Stockholms digitala tvilling"),
    ("buildings", "byggnader"),
    ("traffic signals", "trafiksignaler"),
    ("tiles", "rutor"),
    ("Frame city (Home)", "Visa hela staden (Home)"),
    ("North up (N)", "Norr uppåt (N)"),
    ("Import problems", "Importproblem"),
    ("Cut at the extract's edge", "Avskurna vid utdragets kant"),
    (
        "Features whose members lie outside the file, drawn from the parts inside",
        "Objekt vars delar ligger utanför filen, ritade av delarna innanför",
    ),
    ("The extract's edge", "Utdragets kant"),
    (
        "features reference members outside the file",
        "objekt hänvisar till delar utanför filen",
    ),
    (
        "drawn from their parts inside",
        "ritade av delarna innanför",
    ),
    ("not drawn", "inte ritade"),
    (
        "Every extract cut from a larger map has them; they are not problems.",
        "Varje utdrag ur en större karta har sådana; de är inga problem.",
    ),
    ("Features cut", "Avskurna objekt"),
    ("About", "Om"),
    ("Live", "Live"),
    ("Layers", "Lager"),
    ("Alarms", "Larm"),
    ("Recent", "Senaste"),
    ("Last hour", "Senaste timmen"),
    ("Last day", "Senaste dygnet"),
    ("Last week", "Senaste veckan"),
    ("hours ago", "timmar sedan"),
    ("days ago", "dagar sedan"),
    ("−1 min", "−1 min"),
    ("+1 min", "+1 min"),
    ("PLAYBACK", "UPPSPELNING"),
    ("behind live", "efter live"),
    ("Back to live", "Tillbaka till live"),
    ("Pause", "Paus"),
    ("Previous message", "Föregående meddelande"),
    ("Next message", "Nästa meddelande"),
    ("History", "Historik"),
    ("recorded values", "lagrade värden"),
    ("not recorded", "ej lagrade"),
    (
        "Recording: nothing recorded yet.",
        "Spelar in: inget lagrat ännu.",
    ),
    ("raised in all", "utlösta totalt"),
    ("since", "sedan"),
    ("Alarm log", "Larmlogg"),
    ("raised", "utlöst"),
    ("cleared", "återställt"),
    ("Today", "I dag"),
    ("No live state.", "Inget livetillstånd."),
    ("Since", "Sedan"),
    ("Street lighting", "Gatubelysning"),
    ("Lamp-hours lit", "Lamptimmar tända"),
    ("Lamp-hours dark at night", "Lamptimmar släckta i mörker"),
    ("Buildings, electricity", "Byggnader, el"),
    ("Buildings, heating", "Byggnader, värme"),
    ("sensor-hours", "sensortimmar"),
    ("Signals, green share", "Signaler, andel grönt"),
    ("Alarms raised", "Utlösta larm"),
    ("Reset", "Nollställ"),
    ("Swedish limit values", "Svenska gränsvärden"),
    ("green", "grönt"),
    ("cycle", "cykel"),
    ("Search", "Sök"),
    ("sun, UTC h", "sol, UTC h"),
    ("up", "upp"),
    ("sun follows the live clock", "solen följer klockan"),
    ("Clock", "Klocka"),
    ("in Stockholm", "i Stockholm"),
    ("signal heads", "signallyktor"),
    ("street lamps", "gatlampor"),
    ("meters", "energimätare"),
    ("air sensors", "luftsensorer"),
    ("live", "aktiv"),
    ("stale", "inaktuell"),
    ("normal", "normalt"),
    ("fault", "fel"),
    ("never seen", "aldrig hörd"),
    ("source", "källa"),
    ("state", "tillstånd"),
    ("accepted", "godkända"),
    ("rejected", "avvisade"),
    ("superseded", "ersatta"),
    ("Recent rejections", "Senaste avvisningar"),
    ("Unknown devices", "Okända enheter"),
    ("messages", "meddelanden"),
    ("Applied", "Tillämpade"),
    ("out of order", "i fel ordning"),
    ("from unknown devices", "från okända enheter"),
    ("no known field", "inget känt fält"),
    ("duplicates", "dubbletter"),
    (
        "No source runs: registered devices wait for their first message.",
        "Ingen källa körs: registrerade enheter väntar på sitt första meddelande.",
    ),
    ("Buildings", "Byggnader"),
    ("Signal heads", "Signallyktor"),
    ("Street lamps", "Gatlampor"),
    ("Meters", "Energimätare"),
    ("Air sensors", "Luftsensorer"),
    ("Colour buildings by", "Färglägg byggnader efter"),
    ("type and height", "typ och höjd"),
    ("live power", "effekt nu"),
    ("energy intensity", "energiintensitet"),
    ("data freshness", "datans färskhet"),
    (
        "abnormal only (control room)",
        "bara avvikelser (ledningscentral)",
    ),
    ("Legend", "Teckenförklaring"),
    ("no data", "inga data"),
    ("Fly to (F)", "Flyg dit (F)"),
    ("Close", "Stäng"),
    ("All attributes", "Alla attribut"),
    ("Id", "Id"),
    ("Kind", "Typ"),
    ("Name", "Namn"),
    ("Address", "Adress"),
    ("Height", "Höjd"),
    ("Levels", "Våningar"),
    ("Footprint area", "Fotavtryck"),
    ("Source", "Källa"),
    ("Device", "Enhet"),
    ("Health", "Status"),
    ("Last seen", "Senast hörd"),
    ("Fault", "Fel"),
    ("Power", "Effekt"),
    ("Energy today", "Energi i dag"),
    ("Heating", "Värme"),
    ("Language", "Språk"),
    (
        "Import problems (features skipped or partly read)",
        "Importproblem (objekt som hoppats över eller lästs delvis)",
    ),
    ("Building", "Byggnad"),
    ("Loading the city", "Staden laddas"),
    ("height measured", "uppmätt höjd"),
    ("height from storeys", "höjd från antal våningar"),
    ("height default (12 m)", "standardhöjd (12 m)"),
    ("landmark model", "landmärke (modell)"),
    ("just heard", "nyss hörd"),
    ("half the stale limit", "halva gränsen för inaktuell"),
    ("never heard", "aldrig hörd"),
    ("running", "körs"),
    ("City", "Staden"),
    ("Reported via", "Rapporterad via"),
    // The kiosk.
    ("Landmark", "Landmärke"),
    ("Traffic signal", "Trafiksignal"),
    ("Signalled intersection", "Signalreglerad korsning"),
    ("Street lamp", "Gatlampa"),
    ("Electricity meter", "Elmätare"),
    ("Air sensor", "Luftsensor"),
    ("Vehicle", "Fordon"),
    ("Back to the tour", "Tillbaka till rundturen"),
    ("Detail", "Detalj"),
    ("Detail: select an alarm (N)", "Detalj: välj ett larm (N)"),
    (
        "Tap a building, lamp or sensor",
        "Tryck på en byggnad, lampa eller sensor",
    ),
    ("Age", "Ålder"),
    ("Source down", "Källan nere"),
    ("Reports, not mapped", "Rapporterar, ej mappat"),
    ("Messages with no known field", "Meddelanden utan känt fält"),
    ("msg/s", "medd./s"),
    ("Frame time", "Bildtid"),
    ("alarms", "larm"),
    ("Lighting", "Belysning"),
    ("Energy", "Energi"),
    ("Air quality", "Luftkvalitet"),
    ("Traffic signals", "Trafiksignaler"),
    ("on", "tänd"),
    ("off", "släckt"),
    ("dimmed", "dimrad"),
    ("Power now", "Effekt nu"),
    ("Only faulty lamps", "Bara trasiga lampor"),
    ("Total power now", "Total effekt nu"),
    ("Top consumers", "Största förbrukare"),
    ("Sensor", "Sensor"),
    ("intersections", "korsningar"),
    ("Phase timeline", "Faslinje"),
    ("limit", "gräns"),
    ("Aspect", "Signalbild"),
    ("Time in state", "Tid i läget"),
    ("On", "Tänd"),
    ("Dim level", "Dimnivå"),
    ("Lamp power", "Lampeffekt"),
    ("Lamp fault", "Lampfel"),
    ("NO2", "NO2"),
    ("PM10", "PM10"),
    ("PM2.5", "PM2,5"),
    ("Temperature", "Temperatur"),
    ("minutes ago", "minuter sedan"),
    ("yes", "ja"),
    ("no", "nej"),
    ("never", "aldrig"),
    ("building", "byggnad"),
    ("lamp", "gatlampa"),
    ("signal_head", "signallykta"),
    ("air_sensor", "luftsensor"),
    ("landmark", "landmärke"),
    ("connected", "ansluten"),
    ("connecting", "ansluter"),
    ("playing", "spelas upp"),
    ("finished", "klar"),
    ("hourly mean", "timmedelvärde"),
    ("daily mean", "dygnsmedelvärde"),
    ("annual mean", "årsmedelvärde"),
    ("About Tvilling", "Om Tvilling"),
    (
        "Tvilling is a digital twin of Stockholm: real city geometry, georeferenced in SWEREF 99, with live city sensors.",
        "Tvilling är en digital tvilling av Stockholm: verklig stadsgeometri, georefererad i SWEREF 99, med stadens sensorer live.",
    ),
    (
        "CityJSON samples: 3D BAG / City of Delft, City of Zurich, City of Rotterdam (via the cjio project).",
        "CityJSON-exempel: 3D BAG / Delfts kommun, Zürichs stad, Rotterdams kommun (via projektet cjio).",
    ),
    (
        "Water and districts: Stadskarta, Stockholms stad (CC0).",
        "Vatten och stadsdelar: Stadskarta, Stockholms stad (CC0).",
    ),
    (
        "Coordinate transformations: PROJ.",
        "Koordinattransformationer: PROJ.",
    ),
    (
        "Map data © OpenStreetMap contributors, available under the Open Database License (ODbL) 1.0: https://www.openstreetmap.org/copyright",
        "Kartdata © OpenStreetMaps bidragsgivare, tillgängliga under Open Database License (ODbL) 1.0: https://www.openstreetmap.org/copyright",
    ),
    ("problems in", "problem i"),
    ("files", "filer"),
    (
        "features skipped, the rest loaded.",
        "objekt överhoppade, resten inläst.",
    ),
    ("(own)", "(egen)"),
    (
        "aspect (0 red, 1 red-amber, 2 green, 3 amber)",
        "signalbild (0 röd, 1 rödgul, 2 grön, 3 gul)",
    ),
    ("dim %", "dimning %"),
    ("power W", "effekt W"),
    ("power kW", "effekt kW"),
    ("energy today kWh", "energi i dag kWh"),
    ("heating kW", "värme kW"),
    ("NO2 µg/m³", "NO2 µg/m³"),
    ("PM10 µg/m³", "PM10 µg/m³"),
    ("PM2.5 µg/m³", "PM2,5 µg/m³"),
    ("temperature °C", "temperatur °C"),
    ("Red", "Röd"),
    ("RedAmber", "Rödgul"),
    ("Green", "Grön"),
    ("Amber", "Gul"),
    ("FlashingAmber", "Blinkande gul"),
    ("Dark", "Släckt"),
    // Scenarios.
    ("Scenarios", "Scenarier"),
    (
        "Scenarios run in the window of the desktop app.",
        "Scenarier körs i skrivbordsappens fönster.",
    ),
    ("No scenario files in", "Inga scenariofiler i"),
    ("Day", "Dag"),
    ("Seed", "Frö"),
    ("seed", "frö"),
    ("Running", "Kör"),
    ("Run the day", "Kör dygnet"),
    ("Refused scenario files", "Avvisade scenariofiler"),
    ("one day from", "ett dygn från"),
    ("metric", "mått"),
    (
        "Street lighting, kW by hour from midnight",
        "Gatubelysning, kW per timme från midnatt",
    ),
    ("lighting energy", "belysningens energi"),
    ("lighting cost", "belysningens kostnad"),
    ("lighting emissions", "belysningens utsläpp"),
    ("lamp-hours lit", "tända lamptimmar"),
    ("lamp-hours dark at night", "släckta lamptimmar nattetid"),
    ("building electricity energy", "byggnadernas elenergi"),
    ("building electricity cost", "byggnadernas elkostnad"),
    ("building electricity emissions", "byggnadernas elutsläpp"),
    ("heating energy", "uppvärmningens energi"),
    ("heating cost", "uppvärmningens kostnad"),
    ("heating emissions", "uppvärmningens utsläpp"),
    ("alarms raised", "larm utlösta"),
    ("Show in the city", "Visa i staden"),
    ("twin", "tvillingen"),
    ("colour by difference", "färg efter skillnad"),
    ("Play", "Spela"),
    ("of", "av"),
    (
        "planned devices are in the city on screen",
        "planerade enheter finns i staden på skärmen",
    ),
    ("difference between scenarios", "skillnad mellan scenarier"),
    ("less energy under B", "mindre energi med B"),
    ("unchanged", "oförändrad"),
    ("more energy under B", "mer energi med B"),
    ("planned building", "planerad byggnad"),
    ("Make a new scenario", "Gör ett nytt scenario"),
    ("New scenario", "Nytt scenario"),
    ("Dimming calendar", "Dimringskalender"),
    ("Streets", "Gator"),
    ("+ the selected lamp's street", "+ den valda lampans gata"),
    ("or district", "eller stadsdel"),
    ("Weekdays", "Vardagar"),
    ("Weekends", "Helger"),
    ("Add the calendar", "Lägg till kalendern"),
    ("Signal timing", "Signaltider"),
    (
        "Select a signal head in the view.",
        "Välj en signallykta i vyn.",
    ),
    ("Controller", "Styrapparat"),
    ("Queued vehicles", "Köande fordon"),
    ("LIVE", "LIVE"),
    ("ALARM FLOOD", "LARMFLOD"),
    (
        "Keys: N next alarm, P previous (shown in the detail view), A acknowledge, F fly the overview to it.",
        "Tangenter: N nästa larm, P föregående (visas i detaljvyn), A kvittera, F flyg översikten dit.",
    ),
    (
        "ALARM FLOOD: more than 10 alarms in 10 minutes",
        "LARMFLOD: fler än 10 larm på 10 minuter",
    ),
    ("Alarm rate", "Larmtakt"),
    ("Alarm store unreachable since", "Larmlagret nås inte sedan"),
    (
        "changes kept here, written when it returns",
        "ändringar som väntar här och skrivs när det är tillbaka",
    ),
    (
        "this twin records the alarms",
        "denna tvilling registrerar larmen",
    ),
    (
        "another twin records the alarms",
        "en annan tvilling registrerar larmen",
    ),
    ("Shared alarm book", "Gemensam larmbok"),
    ("station", "station"),
    ("an hour", "i timmen"),
    ("EEMUA 191 benchmark", "EEMUA 191:s riktvärde"),
    ("operator", "operatör"),
    ("Acknowledge all", "Kvittera alla"),
    (
        "Playback: the alarm list as it stood then. Go live to act on alarms.",
        "Uppspelning: larmlistan som den var då. Gå till live för att hantera larm.",
    ),
    ("Acknowledge", "Kvittera"),
    ("Shelving reason", "Skäl att parkera"),
    ("Shelve 1 h", "Parkera 1 h"),
    ("Unshelve", "Återta"),
    ("chattering", "fladdrar"),
    ("high", "hög"),
    ("medium", "medel"),
    ("low", "låg"),
    ("active unacknowledged", "aktivt, ej kvitterat"),
    ("active acknowledged", "aktivt, kvitterat"),
    ("cleared unacknowledged", "upphört, ej kvitterat"),
    ("shelved", "parkerat"),
    ("SUMO lights", "SUMO:s signaler"),
    ("Speed", "Hastighet"),
    ("Waiting", "Väntar"),
    ("Vehicle type", "Fordonstyp"),
    ("Route", "Rutt"),
    ("Lane", "Körfält"),
    ("Approaches", "Tillfarter"),
    ("edge", "länk"),
    ("vehicles", "fordon"),
    ("queued", "i kö"),
    ("mean wait", "medelväntan"),
    ("Cycle", "Omlopp"),
    ("Split", "Fördelning"),
    ("Add the timing", "Lägg till tiderna"),
    ("New building", "Ny byggnad"),
    ("Draw a footprint", "Rita ett fotavtryck"),
    ("Click the corners on the ground", "Klicka hörnen på marken"),
    ("Storeys", "Våningar"),
    ("homes", "bostäder"),
    ("offices", "kontor"),
    ("retail", "handel"),
    ("public", "offentlig"),
    ("Finish the building", "Slutför byggnaden"),
    ("Cancel", "Avbryt"),
    ("Undo", "Ångra"),
    ("Redo", "Gör om"),
    ("Save as a scenario file", "Spara som scenariofil"),
    ("Saved to", "Sparad i"),
    (
        "Name one or more streets, or choose a district.",
        "Ange en eller flera gator, eller välj en stadsdel.",
    ),
];

/// Phrases of texts made at run time (load progress, fault reasons, source states, alarm texts,
/// times ago), replaced in this order when a text is not in [`TEXTS`] as a whole.
pub const PHRASES: &[(&str, &str)] = &[
    // Load progress (tvilling_city::load).
    ("Reading city data", "Läser stadens data"),
    ("Reading model ", "Läser modellen "),
    ("Reading ", "Läser "),
    ("Triangulating buildings: ", "Triangulerar byggnader: "),
    ("Triangulating ", "Triangulerar "),
    ("Placing buildings: ", "Placerar byggnader: "),
    ("Placing ", "Placerar "),
    (" buildings", " byggnader"),
    (" of ", " av "),
    // Scenario metrics made at run time (per pollutant and controller).
    (
        " sensor-hours over the limit",
        " sensortimmar över gränsvärdet",
    ),
    (" green share", " andel grönt"),
    ("lighting energy in ", "belysningens energi i "),
    ("building electricity in ", "byggnadernas el i "),
    (" cycle", " cykel"),
    // Scenario metrics measured in SUMO (tvilling_twin::scenario::report), before the link's.
    ("traffic: vehicles at ", "trafik: fordon vid "),
    ("traffic: delay at ", "trafik: fördröjning vid "),
    ("traffic: trips completed", "trafik: avslutade resor"),
    ("traffic: trips departed", "trafik: påbörjade resor"),
    (
        "traffic: mean delay (SUMO timeLoss)",
        "trafik: medelfördröjning (SUMO timeLoss)",
    ),
    ("traffic: mean waiting time", "trafik: medelväntetid"),
    ("traffic: stops per trip", "trafik: stopp per resa"),
    ("traffic: fuel ", "trafik: bränsle "),
    ("traffic: CO2 ", "trafik: CO2 "),
    // Refused alarm actions (tvilling_metrics::lifecycle::ActionError).
    (" is not shelved", " är inte parkerat"),
    (" is shelved already", " är redan parkerat"),
    (" needs no acknowledgement", " behöver ingen kvittering"),
    ("nothing to acknowledge among ", "inget att kvittera bland "),
    (
        "the list shown is the past (playback): go live to act on alarms",
        "listan som visas är det förflutna (uppspelning): gå till live för att hantera larm",
    ),
    (
        "shelving needs a reason and an expiry after now",
        "parkering kräver ett skäl och ett slut efter nu",
    ),
    // SUMO's link (tvilling_twin::sumo::SumoStatus::describe).
    (" vehicles at ", " fordon kl. "),
    (
        " s behind (the clock waits for SUMO)",
        " s efter (klockan väntar på SUMO)",
    ),
    ("ended at ", "slutade kl. "),
    ("SUMO ended", "SUMO avslutades"),
    // Fault reasons (tvilling_sensors::health) and alarms (summary).
    ("the lamp reports a fault", "lampan rapporterar fel"),
    ("off while the sun is down", "släckt fast solen är nere"),
    ("° elevation", "° solhöjd"),
    ("drawing ", "drar "),
    (" while off", " fast den är släckt"),
    ("silent longer than expected", "tyst längre än väntat"),
    (", limit ", ", gränsvärde "),
    ("(hourly mean)", "(timmedelvärde)"),
    ("(daily mean)", "(dygnsmedelvärde)"),
    ("(annual mean)", "(årsmedelvärde)"),
    // Source states (the app's source status).
    ("disconnected (", "frånkopplad ("),
    (" retries)", " försök)"),
    (" polls", " hämtningar"),
    (" failed", " misslyckade"),
    // Building heights (tvilling_city's height sources) and times ago.
    ("(measured)", "(uppmätt)"),
    ("(from levels)", "(från våningar)"),
    ("(default)", "(standard)"),
    ("(3D geometry)", "(3D-geometri)"),
    (" s ago)", " s sedan)"),
    (" s (reports every ", " s (rapporterar var "),
    (" s of ", " s av "),
    (" per year", " per år"),
];

/// A text made at run time (a legend label, a fault reason, a source state): the table's
/// wording, else the text with its [`PHRASES`] translated.
pub fn tr_str(lang: Lang, text: &str) -> String {
    match lang {
        Lang::English => text.to_string(),
        Lang::Swedish => TEXTS.iter().find(|(en, _)| *en == text).map_or_else(
            || {
                PHRASES
                    .iter()
                    .fold(text.to_string(), |t, (en, sv)| t.replace(en, sv))
            },
            |(_, sv)| (*sv).to_string(),
        ),
    }
}

/// The text in `lang`.
pub fn tr(lang: Lang, english: &'static str) -> &'static str {
    match lang {
        Lang::English => english,
        Lang::Swedish => TEXTS
            .iter()
            .find(|(en, _)| *en == english)
            .map_or(english, |(_, sv)| sv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_one_swedish_wording() {
        for (i, (en, sv)) in TEXTS.iter().enumerate() {
            assert!(!sv.is_empty(), "{en}");
            assert!(
                TEXTS[i + 1..].iter().all(|(e, _)| e != en),
                "{en} is listed twice"
            );
        }
        assert_eq!(tr(Lang::Swedish, "Street lamps"), "Gatlampor");
        // The screenshot tests fold the OCR's é into o: no Swedish text may have one.
        assert!(TEXTS.iter().chain(PHRASES).all(|(_, sv)| !sv.contains('é')));
        // Texts shown with `tr` are looked up in TEXTS only (PHRASES are for `tr_str`).
        assert_eq!(tr(Lang::Swedish, "Scenarios"), "Scenarier");
        assert_eq!(tr(Lang::English, "Street lamps"), "Street lamps");
        assert_eq!(tr_str(Lang::Swedish, "stale"), "inaktuell");
        assert_eq!(
            tr_str(Lang::Swedish, "75 kWh/m² per year"),
            "75 kWh/m² per år"
        );
    }

    /// Rust string literals (plain and raw) of `src` with the code before each, comments and
    /// character literals skipped.
    fn literals(src: &str) -> Vec<(String, String)> {
        let c: Vec<char> = src.chars().collect();
        let (mut i, mut out) = (0, Vec::new());
        let before = |i: usize| -> String { c[i.saturating_sub(80)..i].iter().collect() };
        while i < c.len() {
            let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
            match c[i] {
                '/' if c.get(i + 1) == Some(&'/') => {
                    while i < c.len() && c[i] != '\n' {
                        i += 1;
                    }
                }
                '/' if c.get(i + 1) == Some(&'*') => {
                    i += 2;
                    while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                        i += 1;
                    }
                    i += 2;
                }
                '\'' if c.get(i + 1) == Some(&'\\') => {
                    i += 2;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                '\'' if c.get(i + 2) == Some(&'\'') => i += 3,
                'r' if !ident_before && matches!(c.get(i + 1), Some('"' | '#')) => {
                    let mut j = i + 1;
                    let mut hashes = 0;
                    while c.get(j) == Some(&'#') {
                        hashes += 1;
                        j += 1;
                    }
                    if c.get(j) != Some(&'"') {
                        i += 1;
                        continue;
                    }
                    let start = j + 1;
                    let mut k = start;
                    while k < c.len()
                        && !(c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')))
                    {
                        k += 1;
                    }
                    out.push((before(i), c[start..k].iter().collect()));
                    i = k + 1 + hashes;
                }
                '"' => {
                    let (mut k, mut lit) = (i + 1, String::new());
                    while k < c.len() && c[k] != '"' {
                        if c[k] == '\\' {
                            lit.push(c[k]);
                            k += 1;
                        }
                        lit.push(c[k]);
                        k += 1;
                    }
                    out.push((before(i), lit));
                    i = k + 1;
                }
                _ => i += 1,
            }
        }
        out
    }

    /// Literals that are not texts for people, and why.
    const NOT_TEXT: &[(&str, &str)] = &[
        ("sumo", "the source's name, as the snapshot gives it"),
        (
            "disconnected",
            "a source state's first word, matched, not shown",
        ),
        ("ended", "a source state's first word, matched, not shown"),
        ("failed", "a word of a source state, matched, not shown"),
        ("■", "a coloured square standing for a signal link"),
        ("Tvilling", "the product's name"),
        ("English", "a language's own name"),
        ("Svenska", "a language's own name"),
        ("controller", "a device attribute key"),
        ("cycle_s", "a device attribute key"),
        ("street", "a device attribute key"),
        ("A", "scenario A's letter, the same in Swedish"),
        ("B", "scenario B's letter, the same in Swedish"),
        (
            "A: {}  ·  B: {}",
            "the scenarios' letters around their names, the same in Swedish",
        ),
        ("N", "the compass's north mark, the same in Swedish"),
        (
            "A | B",
            "the scenarios' letters side by side, the same in Swedish",
        ),
        (
            "air_sensors",
            "a caption count's name, as scene files write it",
        ),
        ("signals", "a caption count's name, as scene files write it"),
        ("lamps", "a caption count's name, as scene files write it"),
        (
            "lamps_lit",
            "a caption count's name, as scene files write it",
        ),
        (
            "kiosk: quit with Ctrl+Shift+Q",
            "a log line (logs are in English)",
        ),
        (
            "kiosk: viewpoint {:?} cannot be placed: {why}",
            "a log line (logs are in English)",
        ),
        (
            "{} (SFS 2010:477): {}",
            "the statute's reference around a translated text, the same in Swedish",
        ),
    ];

    /// Words that are units and symbols, the same in both languages.
    const UNITS: &[&str] = &[
        "kW", "kWh", "W", "m", "km", "ms", "s", "min", "h", "d", "UTC", "µg", "m³", "m²",
    ];

    /// Calls that show a text: a literal passed straight to them is shown untranslated.
    const SHOWN_BY: &[&str] = &[
        "Window::new(",
        ".label(",
        ".button(",
        "RichText::new(",
        ".heading(",
        ".text(",
        ".on_hover_text(",
        ".hint_text(",
        ".selectable_label(",
        "CollapsingHeader::new(",
    ];

    /// Calls whose literal is an id egui keys state by, never shown.
    const IDS_OF: &[&str] = &[
        "Id::new(",
        "Grid::new(",
        "Plot::new(",
        "Plot::new((",
        "id_salt(",
        "Name::new(",
    ];

    fn units_only(text: &str) -> bool {
        let mut plain = String::new();
        let mut depth = 0;
        for ch in text.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ if depth == 0 => plain.push(ch),
                _ => {}
            }
        }
        plain
            .split(|ch: char| !(ch.is_alphabetic() || ch == '³' || ch == '²'))
            .filter(|w| w.chars().any(char::is_alphabetic))
            .all(|w| UNITS.contains(&w))
    }

    fn translated(text: &str) -> bool {
        TEXTS.iter().any(|(en, _)| *en == text) || tr_str(Lang::Swedish, text) != text
    }

    /// Every literal with a letter in the panels' code (outside tests) is a text with a Swedish
    /// wording (whole, or by its phrases), an egui id, units only, or listed as not a text; and
    /// no text reaches a widget without going through `tr`.
    #[test]
    fn every_text_the_panels_show_is_translated() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let (mut missing, mut raw, mut checked) = (Vec::new(), Vec::new(), 0);
        let mut not_in_texts = Vec::new();
        for entry in std::fs::read_dir(dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == "i18n.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (before, lit) in literals(code) {
                if !lit.chars().any(|c| c.is_ascii_alphabetic()) {
                    continue;
                }
                let before = before.trim_end();
                if IDS_OF.iter().any(|call| before.ends_with(call)) {
                    continue;
                }
                checked += 1;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                let where_ = format!("{}: {lit:?}", name.unwrap_or_default());
                if NOT_TEXT.iter().any(|(t, _)| *t == lit) {
                    continue;
                }
                if SHOWN_BY.iter().any(|call| before.ends_with(call)) {
                    raw.push(where_.clone());
                }
                // `tr` looks its text up whole in TEXTS (PHRASES only serve `tr_str`).
                let by_tr = ["tr(lang,", "tr(l,"].iter().any(|c| before.ends_with(c));
                if by_tr && !TEXTS.iter().any(|(en, _)| *en == lit) {
                    not_in_texts.push(where_.clone());
                }
                if !units_only(&lit) && !translated(&lit) {
                    missing.push(where_);
                }
            }
        }
        assert!(checked > 150, "the scan found only {checked} texts");
        assert!(missing.is_empty(), "untranslated: {missing:#?}");
        assert!(raw.is_empty(), "shown without tr: {raw:#?}");
        assert!(
            not_in_texts.is_empty(),
            "passed to tr but not in TEXTS: {not_in_texts:#?}"
        );
    }

    #[test]
    fn the_literal_scan_sees_texts_in_every_position() {
        let src = r##"
            egui::Window::new("Raw title")   // "a comment"
            ui.label(tr(l, "Toolbar text"));
            let k = "Key in a variable"; let c = '"'; let r = r#"Raw "string""#;
            egui::Grid::new("grid-id")
        "##;
        let lits: Vec<String> = literals(src).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lits,
            vec![
                "Raw title",
                "Toolbar text",
                "Key in a variable",
                "Raw \"string\"",
                "grid-id"
            ]
        );
        assert!(units_only("{:.1} kW"));
        assert!(units_only("{} {} UTC · {:02}:{:02} {}"));
        assert!(!units_only("{} ({} s ago)"));
        assert!(translated("{} ({} s ago)"), "by its phrase");
        assert!(!translated("Untranslated words"));
    }

    /// Texts that reach the panels through variables: enumerations, rows, legends, fault
    /// reasons, source states, load progress and alarms.
    #[test]
    fn texts_made_at_run_time_have_swedish_wordings() {
        use tvilling_sensors::health::{HealthRules, lamp_fault};
        use tvilling_sensors::registry::{DeviceKind, Quantity};
        use tvilling_sensors::state::{
            AirQualityState, Device, LampState, Liveness, MeterState, SignalAspect, SignalHeadState,
        };
        let mut texts: Vec<String> = Vec::new();
        texts.extend(crate::city::CityTab::ALL.map(|t| t.name().to_string()));
        texts.extend(tvilling_view::layers::ColourBy::ALL.map(|c| c.name().to_string()));
        texts.extend(crate::live::HEALTHS.map(|h| h.as_str().to_string()));
        for by in tvilling_view::layers::ColourBy::ALL {
            texts.extend(
                tvilling_view::layers::legend(by)
                    .into_iter()
                    .map(|(_, l)| l)
                    .filter(|l| !units_only(l)),
            );
        }
        let all_quantities = Quantity::ALL;
        texts.extend(all_quantities.map(|q| crate::inspector::quantity_name(q).to_string()));
        for aspect in SignalAspect::ALL {
            texts.push(format!("{aspect:?}"));
        }
        // Every row of the inspector, for every kind, with every value a word.
        let mut live = Liveness {
            last_seen_ms: Some(0),
            source: Some("mqtt".into()),
            fault: Some("the lamp reports a fault".into()),
            source_down: Some("disconnected: connection refused".into()),
            ..Default::default()
        };
        live.note_unmapped(&["lux".into()], true);
        let (signal, lamp) = (SignalHeadState::default(), LampState::default());
        let (meter, air) = (MeterState::default(), AirQualityState::default());
        let state = crate::inspector::LiveState {
            signal: Some(&signal),
            lamp: Some(&lamp),
            meter: Some(&meter),
            air: Some(&air),
        };
        let device = Device {
            id: "x".into(),
            kind: DeviceKind::Lamp,
        };
        for (label, value) in crate::inspector::device_rows(
            &device,
            &live,
            state,
            30_000,
            Some(&tvilling_sensors::health::HealthRules::default()),
        ) {
            texts.push(label.to_string());
            // Ids, source names and field names are data, not words.
            let data = [
                "Device",
                "Reported via",
                "Reports, not mapped",
                "Source down",
            ]
            .contains(&label);
            if !data && !units_only(&value) {
                texts.push(value);
            }
        }
        let never = Liveness::default();
        for (label, value) in
            crate::inspector::device_rows(&device, &never, Default::default(), 0, None)
        {
            texts.push(label.to_string());
            if !["Device", "Reported via"].contains(&label) && !units_only(&value) {
                texts.push(value);
            }
        }
        for source in [
            tvilling_city::import::HeightSource::Measured,
            tvilling_city::import::HeightSource::FromLevels,
            tvilling_city::import::HeightSource::Default,
            tvilling_city::import::HeightSource::Geometry,
        ] {
            texts.push(format!("12.0 m ({})", source.as_str()));
        }
        // Fault reasons the health rules give, and the alarms made of them.
        let rules = HealthRules::default();
        let faulty = LampState {
            fault: true,
            ..Default::default()
        };
        let drawing = LampState {
            power_w: 30.0,
            ..Default::default()
        };
        for (l, sun) in [
            (&faulty, 10.0),
            (&LampState::default(), -10.0),
            (&drawing, 10.0),
        ] {
            texts.push(lamp_fault(l, sun, &rules).expect("a fault"));
        }
        let stale = Liveness {
            health: tvilling_sensors::state::Health::Stale,
            ..Default::default()
        };
        texts.push(
            tvilling_metrics::alarms::judge(&stale, None)
                .expect("alarm")
                .1,
        );
        let polluted = AirQualityState {
            no2: Some(120.0),
            pm10: Some(60.0),
            pm25: Some(30.0),
            ..Default::default()
        };
        for limit in tvilling_metrics::limits::LIMITS {
            texts.push(limit.averaging.to_string());
        }
        let live_now = Liveness {
            health: tvilling_sensors::state::Health::Live,
            ..Default::default()
        };
        texts.push(
            tvilling_metrics::alarms::judge(&live_now, Some(&polluted))
                .expect("alarm")
                .1,
        );
        // Source states and load progress as the app and the loader write them.
        texts.extend(
            [
                "connecting",
                "connected",
                "disconnected (3 retries): connection refused",
                "4 polls",
                "4 polls, 1 failed: HTTP 503",
                "running",
                "playing",
                "finished",
                "Reading city data",
                "Reading stockholm.osm: 40%",
                "Reading model obelisk.glb",
                "Triangulating 195 buildings",
                "Triangulating buildings: 10 of 195",
                "Placing 195 buildings",
                "Placing buildings: 10 of 195",
            ]
            .map(String::from),
        );
        let missing: Vec<&String> = texts.iter().filter(|t| !translated(t)).collect();
        assert!(missing.is_empty(), "no Swedish wording: {missing:#?}");
        assert!(texts.len() > 60, "{} texts", texts.len());
    }
}
